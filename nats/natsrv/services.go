package natsrv

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/natter-chat/natter/nats/schema"
)

// ServiceUser is one service identity's NATS user: schema.ServiceUser(Name)
// in the CHAT account, with schema.ServicePermissions(Name).
type ServiceUser struct {
	Name string
	// PasswordHash is the bcrypt hash of its password: NATS compares a
	// password starting with "$2" as bcrypt, so no node holds the clear
	// password.
	PasswordHash string
}

// SetServiceUsers makes users the service users of the CHAT account,
// replacing the previous set, on the running server: a configuration
// reload (server.ReloadOptions) with the same options but for these users.
// The reload re-checks every connected client, so a removed user's or a
// rotated password's connections are closed (authorization violation).
// Unchanged sets are not reloaded. Safe for concurrent use.
func (s *Server) SetServiceUsers(users []ServiceUser) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	users = slices.Clone(users)
	slices.SortFunc(users, func(a, b ServiceUser) int { return strings.Compare(a.Name, b.Name) })
	if slices.Equal(users, s.services) {
		return nil
	}
	for _, u := range users {
		if !schema.ValidServiceName(u.Name) || !strings.HasPrefix(u.PasswordHash, "$2") {
			return fmt.Errorf("natsrv: service user %q: invalid name or password hash", u.Name)
		}
	}
	opts, err := s.buildOptions(users)
	if err != nil {
		return err
	}
	if err := s.ns.ReloadOptions(opts); err != nil {
		return fmt.Errorf("natsrv: reload service users: %w", err)
	}
	s.services = users
	s.log.Info("NATS service users reloaded.", "services", len(users))
	return nil
}

// buildOptions is the server's whole configuration with service users:
// what Start starts with (none) and SetServiceUsers reloads.
func (s *Server) buildOptions(users []ServiceUser) (*server.Options, error) {
	opts, err := options(s.cfg)
	if err != nil {
		return nil, err
	}
	if err := opts.ProcessConfigString(accountsConfig(s.creds)); err != nil {
		return nil, fmt.Errorf("natsrv: accounts configuration: %w", err)
	}
	if err := clusterOptions(opts, s.cfg, s.creds); err != nil {
		return nil, err
	}
	var chat *server.Account
	for _, a := range opts.Accounts {
		if a.GetName() == accountChat {
			chat = a
		}
	}
	if chat == nil {
		return nil, fmt.Errorf("natsrv: no account %s in the configuration", accountChat)
	}
	for _, u := range users {
		p := schema.ServicePermissions(u.Name)
		opts.Users = append(opts.Users, &server.User{
			Username: schema.ServiceUser(u.Name),
			Password: u.PasswordHash,
			Account:  chat,
			Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: p.Publish},
				Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
			},
		})
	}
	return opts, nil
}

// ServiceURLFile is the file under a data directory holding service
// name's NATS URL with its credentials (mode 0600), written by `natter
// service add` and `rotate`.
func ServiceURLFile(name string) string { return "nats-" + schema.ServiceUser(name) + ".url" }

// ServiceURLs returns the comma-separated NATS URLs of user
// schema.ServiceUser(name) with password at each of servers
// (host:port); tls gives tls:// URLs.
func ServiceURLs(servers []string, name, password string, tls bool) string {
	scheme := "nats"
	if tls {
		scheme = "tls"
	}
	urls := make([]string, 0, len(servers))
	for _, h := range servers {
		if h = strings.TrimSpace(h); h != "" {
			urls = append(urls, (&url.URL{Scheme: scheme, User: url.UserPassword(schema.ServiceUser(name), password), Host: h}).String())
		}
	}
	return strings.Join(urls, ",")
}

// WriteSecretFile writes data to path with mode 0600, atomically.
func WriteSecretFile(path string, data []byte) error { return writeFileAtomic(path, data) }

// NewPassword returns a fresh random password of the kind the role users
// get (32 base62 characters).
func NewPassword() (string, error) { return newPassword() }
