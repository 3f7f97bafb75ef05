package natsrv

import (
	"fmt"
	"net/url"
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
// replacing the previous set, on the running server: new connections
// are checked against them at once, and the open connections of a user
// that is gone or whose password changed are closed. Safe for concurrent
// use.
func (s *Server) SetServiceUsers(users []ServiceUser) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	for _, u := range users {
		if !schema.ValidServiceName(u.Name) || !strings.HasPrefix(u.PasswordHash, "$2") {
			return fmt.Errorf("natsrv: service user %q: invalid name or password hash", u.Name)
		}
	}
	revoked := s.authn.setServices(users)
	for _, user := range revoked {
		s.kick(user)
	}
	if len(revoked) > 0 || len(users) != s.nServices {
		s.log.Info("NATS service users changed.", "services", len(users), "revoked", len(revoked))
	}
	s.nServices = len(users)
	return nil
}

// kick closes every connection of user. One that was authenticating
// while the user changed is checked against the new set, or, when it got
// through just before, listed by Connz and closed here.
func (s *Server) kick(user string) {
	cz, err := s.ns.Connz(&server.ConnzOptions{User: user, Limit: 1 << 20})
	if err != nil {
		s.log.Error("Listing a revoked service user's connections failed.", "user", user, "err", err)
		return
	}
	for _, c := range cz.Conns {
		_ = s.ns.DisconnectClientByID(c.Cid)
	}
}

// buildOptions is the server's whole configuration: the configured users
// go to the authenticator, which also checks the service users.
func (s *Server) buildOptions() (*server.Options, error) {
	opts, err := options(s.cfg)
	if err != nil {
		return nil, err
	}
	if err := opts.ProcessConfigString(accountsConfig(s.creds, s.cfg.Streams)); err != nil {
		return nil, fmt.Errorf("natsrv: accounts configuration: %w", err)
	}
	if err := clusterOptions(opts, s.cfg, s.creds); err != nil {
		return nil, err
	}
	if err := gatewayOptions(opts, s.cfg, s.creds); err != nil {
		return nil, err
	}
	static := make(map[string]*server.User, len(opts.Users))
	for _, u := range opts.Users {
		static[u.Username] = u
	}
	s.authn = &authenticator{static: static}
	opts.CustomClientAuthentication = s.authn
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
