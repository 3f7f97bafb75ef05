package scyllastore

import (
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Disappearing messages (history/expiry.go). Cassandra and Scylla expire
// rows themselves: a row with ExpiresAt is inserted USING TTL of the
// seconds it has left (rounded up, so never before expires_at), and every
// later write to it (an edit, a delete, a thread count) carries the
// remaining TTL too, since a cell written without one would outlive the
// row. Its thread index entry expires with it. Pages skip an expired row
// in the second before Cassandra drops it (the history Reader filters by
// expires_at), so no request returns one.

// expiryColumns is migrate step 3: the expires_at of a disappearing row;
// "" (or null, in rows written before) for one that does not expire.
var expiryColumns = [][2]string{{"expires_at", "text"}}

// ttlOf is the USING TTL of a write to m's row: 0 (none) for a row that
// does not expire, else its remaining seconds, at least 1.
func (s *Store) ttlOf(m *protocol.Message) int {
	t, ok := protocol.ParseExpiry(m.ExpiresAt)
	if !ok {
		return 0
	}
	d := t.Sub(s.now())
	return int(max((d+time.Second-1)/time.Second, 1))
}
