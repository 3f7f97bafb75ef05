package conversation

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// Read markers live under r.<conv>.<uid>, delivered markers (delivered.go)
// under d.<conv>.<uid>, each as a decimal seq. They only move forwards:
// every change is a compare-and-set, so concurrent devices of one user, or
// gateways, cannot move a marker back.

func readKey(conv, uid string) string { return "r." + conv + "." + uid }

// ReadSeq returns uid's read marker in conv, 0 before any read.
//
// With Config.LeaderChecks (the gateway's store) it reads the marker from
// the bucket's leader: a direct get is answered by any replica, and one
// behind the leader answers a marker older than the user's own read a
// moment ago, on another device or gateway (read-your-writes: a user who
// marked read and reconnects must not see the messages unread again).
// That is one request to the leader per conversation listed instead of a
// direct get to the nearest replica.
func (s *Store) ReadSeq(ctx context.Context, conv, uid string) (uint64, error) {
	seq, _, err := s.markerAt(ctx, readKey(conv, uid), s.cfg.LeaderChecks)
	return seq, err
}

// markerAt reads the marker under key and its revision; 0, 0 when unset.
// With leader it asks the bucket's leader rather than a replica.
func (s *Store) markerAt(ctx context.Context, key string, leader bool) (uint64, uint64, error) {
	var val []byte
	var rev uint64
	if leader {
		var err error
		rev, val, err = s.leaderGet(ctx, schema.KVStream(schema.BucketConversations), schema.KVKey(schema.BucketConversations, key))
		if err != nil {
			return 0, 0, fmt.Errorf("marker %s: %w", key, err)
		}
		if rev == 0 || len(val) == 0 { // none, or a delete's tombstone (an erased user)
			return 0, 0, nil
		}
	} else {
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, 0, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("marker %s: %w", key, err)
		}
		val, rev = e.Value(), e.Revision()
	}
	seq, err := strconv.ParseUint(string(val), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("decode marker %s: %w", key, err)
	}
	return seq, rev, nil
}

// MarkRead moves uid's marker in conv to seq when that is further on, and
// reports whether it moved. The caller checks membership and clamps seq.
func (s *Store) MarkRead(ctx context.Context, conv, uid string, seq uint64) (bool, error) {
	return s.advance(ctx, readKey(conv, uid), seq)
}

// advance moves the marker under key to seq when that is further on, and
// reports whether it moved.
//
// A marker this process read or wrote before is moved with one
// compare-and-set on the remembered revision (every send moves the
// sender's marker); only when another process moved it meanwhile is it
// read again.
func (s *Store) advance(ctx context.Context, key string, seq uint64) (bool, error) {
	val := []byte(strconv.FormatUint(seq, 10))
	if m, ok := s.marks.get(key); ok {
		if seq <= m.seq {
			return false, nil
		}
		rev, err := s.kv.Update(ctx, key, val, m.rev)
		if err == nil {
			s.marks.put(key, seq, rev)
			return true, nil
		}
		if !isWrongRevision(err) {
			return false, fmt.Errorf("move marker %s: %w", key, err)
		}
	}
	for attempt := 0; attempt < 50; attempt++ {
		// The first read may come from a replica; once a compare-and-set
		// failed, a replica may be what is behind (its revision is not
		// the leader's, and stays so until it catches up), so with
		// LeaderChecks the leader is asked.
		cur, rev, err := s.markerAt(ctx, key, attempt > 0 && s.cfg.LeaderChecks)
		if err != nil {
			return false, err
		}
		if seq <= cur {
			if rev != 0 {
				s.marks.put(key, cur, rev)
			}
			return false, nil
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = s.kv.Create(ctx, key, val)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		} else {
			newRev, err = s.kv.Update(ctx, key, val, rev)
			if isWrongRevision(err) {
				continue
			}
		}
		if err != nil {
			return false, fmt.Errorf("move marker %s: %w", key, err)
		}
		s.marks.put(key, seq, newRev)
		return true, nil
	}
	return false, fmt.Errorf("%w: marker %s changed too often", ErrConflict, key)
}
