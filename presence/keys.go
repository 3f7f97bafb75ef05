// Package presence tracks who is online in the PRESENCE KV bucket.
//
// A gateway writes one key per connection, c.<uid>.<gateway>.<session>,
// when it opens and purges it when it closes, and keeps a lease,
// g.<gateway>, alive with a per-message TTL. Writes therefore follow
// connects and disconnects, not heartbeats: a client's heartbeats only keep
// its socket open, and the gateway closes a silent socket, which purges its
// key. When a gateway dies without cleaning up, its lease expires, the
// server leaves a marker, and the presence service purges that gateway's
// connection keys.
//
// A closed connection must not stay online, so the Tracker repairs what a
// failure leaves: it retries a failed purge, purges again a key whose
// connection closed while it was being written, and reconciles the bucket
// with its live connections periodically. Purge markers expire after the
// bucket's LimitMarkerTTL, so closed connections leave no tombstones.
//
// The presence service watches the whole bucket with one watcher, turns key
// changes into user-level transitions (first device on, last device off),
// records each user's state under u.<uid> and publishes the transition to
// the users who share a direct conversation or a small group with that
// user. Because u.<uid> records what was last announced, a restarted service
// compares it with the live connection keys and announces exactly the
// transitions it missed.
package presence

import (
	"strings"
	"time"
)

// Key prefixes in the PRESENCE bucket.
const (
	connPrefix  = "c."
	leasePrefix = "g."
	userPrefix  = "u."
)

func connKey(uid, gateway, session string) string {
	return connPrefix + uid + "." + gateway + "." + session
}

func leaseKey(gateway string) string { return leasePrefix + gateway }

func userKey(uid string) string { return userPrefix + uid }

// parseConnKey splits c.<uid>.<gateway>.<session>.
func parseConnKey(key string) (uid, gateway string, ok bool) {
	rest, found := strings.CutPrefix(key, connPrefix)
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// Conn is the value of a connection key.
type Conn struct {
	Device string    `json:"device,omitempty"`
	Since  time.Time `json:"since"`
}

// State is the value of u.<uid>: what was last announced for the user.
type State struct {
	Online   bool      `json:"online"`
	Devices  int       `json:"devices"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Since    time.Time `json:"since,omitzero"`
}

// Event is the push users get when a contact comes online or goes
// offline, on chat.user.<uid>.presence and chat.presence.<uid>.
type Event struct {
	Type string `json:"type"`
	User string `json:"user"`
	// Push is always true: presence is also the reply to a query, and
	// clients tell the two apart by it. After User, which the gateway
	// scans for (gateway/block.go topField).
	Push     bool   `json:"push"`
	Online   bool   `json:"online"`
	Devices  int    `json:"devices,omitempty"`
	LastSeen string `json:"last_seen,omitempty"`
}
