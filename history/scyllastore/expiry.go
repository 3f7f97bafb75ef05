package scyllastore

import (
	"context"
	"fmt"
	"math"
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
// thread_expiring marks a root counting a reply that expires (below).
var expiryColumns = [][2]string{{"expires_at", "text"}, {"thread_expiring", "boolean"}}

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

// A thread root's thread_count and thread_last_seq are written as each
// reply is appended; Cassandra drops an expired reply (and its
// thread_replies entry, written with the same TTL) by itself, telling
// the root nothing. So a root counting a reply that expires is marked
// thread_expiring, and a read of such a root recounts its thread from
// thread_replies: a count and one row, for roots in disappearing
// conversations only.

// recount sets the thread counts of rows marked thread_expiring from
// their thread index.
func (s *Store) recount(ctx context.Context, conv string, rows []row) error {
	for i := range rows {
		r := &rows[i]
		if !r.ThreadExpiring || r.ThreadCount == 0 {
			continue
		}
		q, err := s.query(ctx, s.q.countThread)
		if err != nil {
			return err
		}
		var n int64
		if err := q.Bind(conv, r.Seq).GetRelease(&n); err != nil {
			return fmt.Errorf("scyllastore: count thread (%s, %d): %w", conv, r.Seq, err)
		}
		var last []int64
		if n > 0 {
			if q, err = s.query(ctx, s.q.threadBefore); err != nil {
				return err
			}
			if err := q.Bind(conv, r.Seq, int64(math.MaxInt64), 1).SelectRelease(&last); err != nil {
				return fmt.Errorf("scyllastore: last reply of (%s, %d): %w", conv, r.Seq, err)
			}
		}
		r.ThreadCount, r.ThreadLastSeq = n, 0
		if len(last) > 0 {
			r.ThreadLastSeq = last[0]
		}
	}
	return nil
}
