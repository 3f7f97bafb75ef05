package natsrv

import (
	"crypto/subtle"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/natter-chat/natter/nats/schema"
)

// authenticator checks every client connection (the server's
// CustomClientAuthentication): the users of the configuration (natter,
// operator, the roles, sys) with their passwords, accounts and
// permissions as configured, and the service users, which change while
// the server runs (SetServiceUsers). Service users are not configuration
// because changing configuration means a reload, and nats-server reads
// its options unlocked on hot paths (direct gets), which a reload races.
type authenticator struct {
	ns atomic.Pointer[server.Server]
	// static are the configured users by name.
	static map[string]*server.User
	mu     sync.RWMutex
	// services are the service users' bcrypt hashes by NATS user name.
	services map[string]string
}

var _ server.Authentication = (*authenticator)(nil)

// Check authenticates c and gives it its account and permissions.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	ns := a.ns.Load()
	if ns == nil || c.Kind() != server.CLIENT {
		return false
	}
	o := c.GetOpts()
	if u, ok := a.static[o.Username]; ok {
		if subtle.ConstantTimeCompare([]byte(u.Password), []byte(o.Password)) != 1 || u.Account == nil {
			return false
		}
		acc, err := ns.LookupAccount(u.Account.Name)
		if err != nil {
			return false
		}
		c.RegisterUser(&server.User{Username: u.Username, Account: acc, Permissions: u.Permissions})
		return true
	}
	a.mu.RLock()
	hash, ok := a.services[o.Username]
	a.mu.RUnlock()
	if !ok || bcrypt.CompareHashAndPassword([]byte(hash), []byte(o.Password)) != nil {
		return false
	}
	name := o.Username[len(schema.ServiceUser("")):]
	acc, err := ns.LookupAccount(accountChat)
	if err != nil {
		return false
	}
	p := schema.ServicePermissions(name)
	c.RegisterUser(&server.User{Username: o.Username, Account: acc, Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: p.Publish},
		Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
	}})
	return true
}

// setServices replaces the service users and returns the NATS user names
// whose password changed or who are gone.
func (a *authenticator) setServices(users []ServiceUser) (revoked []string) {
	next := make(map[string]string, len(users))
	for _, u := range users {
		next[schema.ServiceUser(u.Name)] = u.PasswordHash
	}
	a.mu.Lock()
	for name, hash := range a.services {
		if next[name] != hash {
			revoked = append(revoked, name)
		}
	}
	a.services = next
	a.mu.Unlock()
	return revoked
}
