package natsrv

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/natter-chat/natter/nats/schema"
)

// Names of the accounts, users and files this package manages.
const (
	accountChat = "CHAT"
	accountSys  = "SYS"

	userNatter   = "natter"
	userOperator = "operator"
	userSys      = "sys"
	userRoute    = "route"

	authFile   = "nats-auth.json"
	urlFile    = "nats.url"
	sysURLFile = "nats-sys.url"
)

// passwordLen gives 32*log2(62) ≈ 190 bits of entropy.
const passwordLen = 32

// base62 has no character that needs escaping in a URL's userinfo or in a
// quoted NATS configuration string.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// credentials is the content of DataDir/nats-auth.json.
type credentials struct {
	Natter   string `json:"natter"`
	Operator string `json:"operator"`
	Sys      string `json:"sys"`
	// Route authenticates the cluster's nodes to each other (user
	// userRoute); only used with a cluster.
	Route string `json:"route"`
	// Roles holds the passwords of the role users (roles.go).
	Roles map[string]string `json:"roles"`
}

// loadCredentials reads the credentials file at path (DataDir/nats-auth.json
// or the cluster's shared Config.AuthFile), creating it (or completing
// missing passwords) on first start. Passwords are never regenerated once
// written, so nats.url stays valid across restarts.
func loadCredentials(path string) (credentials, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return credentials{}, fmt.Errorf("%w: %w", ErrAuthFile, err)
	}
	var c credentials
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return c, fmt.Errorf("%w: %w", ErrAuthFile, err)
	default:
		if err := json.Unmarshal(data, &c); err != nil {
			return c, fmt.Errorf("%w: %s: %w", ErrAuthFile, path, err)
		}
	}
	changed := false
	if c.Roles == nil {
		c.Roles = make(map[string]string)
	}
	ptrs := []*string{&c.Natter, &c.Operator, &c.Sys, &c.Route}
	for _, role := range Roles {
		if c.Roles[role] == "" {
			gen, err := newPassword()
			if err != nil {
				return c, fmt.Errorf("%w: %w", ErrAuthFile, err)
			}
			c.Roles[role], changed = gen, true
		} else if !validPassword(c.Roles[role]) {
			return c, fmt.Errorf("%w: %s: password with characters outside [0-9A-Za-z]", ErrAuthFile, path)
		}
	}
	for _, p := range ptrs {
		if *p == "" {
			gen, err := newPassword()
			if err != nil {
				return c, fmt.Errorf("%w: %w", ErrAuthFile, err)
			}
			*p, changed = gen, true
		} else if !validPassword(*p) {
			return c, fmt.Errorf("%w: %s: password with characters outside [0-9A-Za-z]", ErrAuthFile, path)
		}
	}
	if !changed {
		return c, nil
	}
	data, err = json.MarshalIndent(c, "", "  ")
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrAuthFile, err)
	}
	if err := writeFileAtomic(path, append(data, '\n')); err != nil {
		return c, fmt.Errorf("%w: %w", ErrAuthFile, err)
	}
	return c, nil
}

// newPassword returns passwordLen random base62 characters, drawn from
// crypto/rand with rejection sampling so every character is uniform.
func newPassword() (string, error) {
	out := make([]byte, 0, passwordLen)
	buf := make([]byte, 2*passwordLen)
	for len(out) < passwordLen {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("random password: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: bytes at or above it would bias the result.
			if b < 248 && len(out) < passwordLen {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out), nil
}

func validPassword(p string) bool {
	if len(p) < 24 {
		return false
	}
	for i := range len(p) {
		c := p[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file in the same directory and a rename, so readers never see a partial
// file and a crash leaves either the old or the new content.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, name := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// accountsConfig is the NATS configuration of the accounts and users. It
// goes through the configuration parser because enabling JetStream on an
// account before the server starts is only possible from configuration.
// Passwords are base62 (checked by validPassword), so quoting is safe.
//
// streams > 1 adds the CHAT account's subject mapping of the partition
// streams (schema.Mappings), before permissions and JetStream see a
// publish.
func accountsConfig(c credentials, streams int) string {
	return fmt.Sprintf(`
accounts {
  %s {
    jetstream: enabled
%s    users: [
      {user: %q, password: %q}
      {user: %q, password: %q}
%s    ]
  }
  %s {
    users: [
      {user: %q, password: %q}
    ]
  }
}
system_account: %s
`, accountChat, mappingsConfig(streams), userNatter, c.Natter, userOperator, c.Operator, roleUsersConfig(c),
		accountSys, userSys, c.Sys, accountSys)
}

// mappingsConfig is the mappings block of n partition streams, "" for one.
func mappingsConfig(n int) string {
	m := schema.Mappings(n)
	if m == nil {
		return ""
	}
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	b.WriteString("    mappings {\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "      %q: %q\n", k, m[k])
	}
	b.WriteString("    }\n")
	return b.String()
}
