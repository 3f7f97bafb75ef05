package natsrv

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
)

// Role users of the CHAT account (schema.Roles). Each role process
// connects as its own user, whose permissions (schema.RolePermissions)
// allow what that role does and nothing else; the operator user keeps
// full access for the operator's processes and the nats CLI.
const (
	// RoleGateway serves WebSocket clients and runs a fan-out worker.
	RoleGateway = schema.RoleGateway
	// RoleHistory writes the history store and serves chat.api.history.
	RoleHistory = schema.RoleHistory
	// RolePresence runs the presence service.
	RolePresence = schema.RolePresence
	// RolePush runs the push notification dispatcher.
	RolePush = schema.RolePush
	// RoleService is for internal services: publish messages into
	// conversations and read history, nothing else.
	RoleService = schema.RoleService
)

// Roles lists the role users, in the order their URL files are written.
var Roles = schema.Roles

// OperatorURLFile is the file under DataDir holding the operator's NATS
// URL (OperatorURL): what operator tools (natter admin) read.
const OperatorURLFile = urlFile

// RoleURLFile is the file under DataDir holding a role's NATS URL.
func RoleURLFile(role string) string { return "nats-" + role + ".url" }

// roleUsersConfig renders the role users for the CHAT account's user list.
// Every subject comes from nats/schema, so a renamed stream, bucket or
// consumer renames its permission too.
func roleUsersConfig(c credentials) string {
	var b strings.Builder
	for _, role := range Roles {
		p, ok := schema.RolePermissions(role)
		if !ok {
			panic("natsrv: no permissions for role " + role)
		}
		fmt.Fprintf(&b, "      {user: %q, password: %q, permissions: {publish: {allow: %s}, subscribe: {allow: %s}, allow_responses: %t}}\n",
			role, c.Roles[role], quoteList(p.Publish), quoteList(p.Subscribe), p.AllowResponses)
	}
	return b.String()
}

func quoteList(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// RoleURL returns the NATS URL, with credentials, of a role user.
func (s *Server) RoleURL(role string) string {
	return s.url(url.UserPassword(role, s.creds.Roles[role]))
}

// ConnectRole opens an in-process connection (no socket) as role's user,
// with the role's inbox prefix, named name: natter serve runs each of its
// roles with no more rights than the same role in a process of its own.
func (s *Server) ConnectRole(role, name string, opts ...nats.Option) (*nats.Conn, error) {
	pass, ok := s.creds.Roles[role]
	if !ok {
		return nil, fmt.Errorf("natsrv: connect %q: unknown role %q", name, role)
	}
	return s.Connect(name, append([]nats.Option{nats.UserInfo(role, pass), nats.CustomInboxPrefix(schema.Inbox(role))}, opts...)...)
}

// UserURLs returns the NATS URL list (comma-separated, one per server
// host:port) with the credentials of user (a role, or "operator") from
// the credentials file at authFile, which it creates with fresh passwords
// (or completes) first, like a node does: what an operator hands each
// role of a cluster. tls gives tls:// URLs.
func UserURLs(authFile string, servers []string, user string, tls bool) (string, error) {
	c, err := loadCredentials(authFile)
	if err != nil {
		return "", err
	}
	pass, ok := c.Roles[user]
	if user == userOperator {
		pass, ok = c.Operator, true
	}
	if !ok {
		return "", fmt.Errorf("natsrv: no NATS user %q (roles: %s, or %s)", user, strings.Join(Roles, ", "), userOperator)
	}
	scheme := "nats"
	if tls {
		scheme = "tls"
	}
	urls := make([]string, 0, len(servers))
	for _, s := range servers {
		if s = strings.TrimSpace(s); s != "" {
			urls = append(urls, (&url.URL{Scheme: scheme, User: url.UserPassword(user, pass), Host: s}).String())
		}
	}
	if len(urls) == 0 {
		return "", errors.New("natsrv: no server to name in the URLs")
	}
	return strings.Join(urls, ","), nil
}

// RoleUsersConfig renders the role users, with their passwords from the
// credentials file at authFile (created or completed first, like
// UserURLs) and their permissions, as entries of a NATS server
// configuration's users list: what an operator pastes into the account
// of a NATS cluster that natter nats does not run.
func RoleUsersConfig(authFile string) (string, error) {
	c, err := loadCredentials(authFile)
	if err != nil {
		return "", err
	}
	return roleUsersConfig(c), nil
}
