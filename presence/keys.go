// Package presence tracks who is online in the PRESENCE KV bucket.
//
// A gateway writes one key per connection,
// c.<partition>.<uid>.<gateway>.<session>,
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
// The presence work is split into Partitions partitions by user
// (Partition). Each presence service process takes a fair share of them,
// each under a lease o.<partition> that one process holds at a time, and
// runs one worker per partition it holds: a watcher of that partition's
// keys (and every gateway lease) that turns key changes into user-level
// transitions (first device on, last device off), records each user's
// state under u.<partition>.<uid> and publishes the transition to the
// users who share a direct conversation or a small group with that user.
// Because the state records what was last announced, a worker that takes
// a partition over compares it with the live connection keys and
// announces exactly the transitions it missed.
package presence

import (
	"strconv"
	"strings"
	"time"
)

// Key prefixes in the PRESENCE bucket.
const (
	connPrefix   = "c."
	leasePrefix  = "g."
	userPrefix   = "u."
	ownerPrefix  = "o."
	memberPrefix = "s."
)

// Partitions is how many partitions the presence work is split into. A
// user belongs to Partition(uid) for good: the number is part of the key
// layout (c.<partition>.<uid>..., u.<partition>.<uid>), so it is a
// constant of the cluster, not a setting. Sixteen spreads the work over
// up to sixteen presence processes.
const Partitions = 16

// Partition is the partition of uid: FNV-1a (32 bit) of the id modulo
// Partitions. It must never change: gateways write keys under it and the
// presence services watch them by it.
func Partition(uid string) int {
	h := uint32(2166136261)
	for i := 0; i < len(uid); i++ {
		h ^= uint32(uid[i])
		h *= 16777619
	}
	return int(h % Partitions)
}

func connKey(uid, gateway, session string) string {
	return connPrefix + strconv.Itoa(Partition(uid)) + "." + uid + "." + gateway + "." + session
}

func leaseKey(gateway string) string { return leasePrefix + gateway }

func userKey(uid string) string {
	return userPrefix + strconv.Itoa(Partition(uid)) + "." + uid
}

// legacyUserKey is u.<uid>, the user state's key before partitions; read
// when a user has no state under userKey yet.
func legacyUserKey(uid string) string { return userPrefix + uid }

func ownerKey(part int) string { return ownerPrefix + strconv.Itoa(part) }

func memberKey(service string) string { return memberPrefix + service }

// parseConnKey splits c.<partition>.<uid>.<gateway>.<session>, and the
// layout before partitions, c.<uid>.<gateway>.<session>, which gateways
// of an older release still write during an upgrade.
func parseConnKey(key string) (uid, gateway string, ok bool) {
	rest, found := strings.CutPrefix(key, connPrefix)
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, ".")
	switch len(parts) {
	case 3: // before partitions
		return parts[0], parts[1], true
	case 4:
		if p, err := strconv.Atoi(parts[0]); err != nil || p != Partition(parts[1]) {
			return "", "", false
		}
		return parts[1], parts[2], true
	}
	return "", "", false
}

// parseUserKey returns the user of u.<partition>.<uid>, or of the legacy
// u.<uid> with legacy set.
func parseUserKey(key string) (uid string, legacy, ok bool) {
	rest, found := strings.CutPrefix(key, userPrefix)
	if !found {
		return "", false, false
	}
	parts := strings.Split(rest, ".")
	switch len(parts) {
	case 1:
		return parts[0], true, true
	case 2:
		if p, err := strconv.Atoi(parts[0]); err != nil || p != Partition(parts[1]) {
			return "", false, false
		}
		return parts[1], false, true
	}
	return "", false, false
}

// connFilters are the keys one partition's worker watches: its
// connections, every gateway lease, and the connections of the layout
// before partitions, which it sorts by user itself. The filters differ in
// their number of tokens, so none overlaps another.
func connFilters(part int) []string {
	return []string{
		connPrefix + strconv.Itoa(part) + ".*.*.*",
		leasePrefix + "*",
		connPrefix + "*.*.*", // before partitions
	}
}

// userFilters are the user states a partition's worker reads when it
// starts: its own, and those of the layout before partitions.
func userFilters(part int) []string {
	return []string{
		userPrefix + strconv.Itoa(part) + ".*",
		userPrefix + "*", // before partitions
	}
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
	Type     string `json:"type"`
	User     string `json:"user"`
	Online   bool   `json:"online"`
	Devices  int    `json:"devices,omitempty"`
	LastSeen string `json:"last_seen,omitempty"`
}
