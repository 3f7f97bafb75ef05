package localstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// Disappearing messages (history/expiry.go). A row with ExpiresAt has an
// entry in the expiry index, ordered by the time it expires:
//
//	'x' unixnano(expires_at) len conv seq -> empty
//
// Expire, which the history writer calls every second or so
// (history.Expirer), walks the index up to now and deletes each row with
// its plain-message and thread index entries, then the entry. Reads skip
// an expired row the sweep has not reached yet, so no request sees one.
const tagExpiry = 'x'

var _ history.Expirer = (*Store)(nil)

// expireBatch bounds the rows one batch of Expire deletes.
const expireBatch = 1024

func expiryKey(expiresAt, conv string, seq uint64) []byte {
	t, _ := protocol.ParseExpiry(expiresAt)
	k := make([]byte, 0, 1+8+1+len(conv)+8)
	k = append(k, tagExpiry)
	k = binary.BigEndian.AppendUint64(k, uint64(max(t.UnixNano(), 0)))
	k = append(k, byte(len(conv)))
	k = append(k, conv...)
	return binary.BigEndian.AppendUint64(k, seq)
}

// parseExpiryKey returns the conversation and seq of an expiry entry.
func parseExpiryKey(k []byte) (string, uint64, bool) {
	if len(k) < 1+8+1+8 || k[0] != tagExpiry {
		return "", 0, false
	}
	n := int(k[9])
	if len(k) != 1+8+1+n+8 {
		return "", 0, false
	}
	return string(k[10 : 10+n]), binary.BigEndian.Uint64(k[10+n:]), true
}

type expiring struct {
	key  []byte
	conv string
	seq  uint64
}

// Expire deletes every row that expired by now, with its index entries,
// and returns how many rows it deleted.
func (s *Store) Expire(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		due, err := s.due(ctx, now)
		if err != nil || len(due) == 0 {
			return total, err
		}
		n, err := s.expire(due)
		total += n
		if err != nil || len(due) < expireBatch {
			return total, err
		}
	}
}

// due returns up to expireBatch expiry entries at or before now.
func (s *Store) due(ctx context.Context, now time.Time) ([]expiring, error) {
	lo := []byte{tagExpiry}
	hi := binary.BigEndian.AppendUint64([]byte{tagExpiry}, uint64(max(now.UnixNano(), 0))+1)
	var due []expiring
	err := s.scan(ctx, lo, hi, func(it *pebble.Iterator) error {
		for ok := it.First(); ok && len(due) < expireBatch; ok = it.Next() {
			conv, seq, valid := parseExpiryKey(it.Key())
			e := expiring{key: append([]byte(nil), it.Key()...), conv: conv, seq: seq}
			if !valid {
				e.conv = "" // a damaged entry is dropped, nothing else
			}
			due = append(due, e)
		}
		return nil
	})
	return due, err
}

// expire deletes the rows of due and their entries in one batch.
func (s *Store) expire(due []expiring) (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	convs := make([]string, 0, len(due))
	for _, e := range due {
		convs = append(convs, e.conv)
	}
	unlock := s.lockConvs(convs)
	defer unlock()
	b := s.db.NewIndexedBatch()
	defer b.Close()
	n := 0
	for _, e := range due {
		if e.conv != "" {
			row, err := get(b, e.conv, e.seq)
			switch {
			case errors.Is(err, pebble.ErrNotFound):
			case err != nil:
				return 0, err
			default:
				// A reply leaves its root's thread count (retain.go).
				if err := dropRow(b, e.conv, e.seq, row); err != nil {
					return 0, err
				}
				n++
			}
		}
		if err := b.Delete(e.key, nil); err != nil {
			return 0, fmt.Errorf("localstore: expire entry: %w", err)
		}
	}
	if err := b.Commit(s.sync); err != nil {
		return 0, fmt.Errorf("localstore: commit expiry of %d rows: %w", n, err)
	}
	return n, nil
}

// Checkpoint writes a consistent copy of the database to dir, which must
// not exist: a copy other processes (and tests) may open while the store
// stays open.
func (s *Store) Checkpoint(dir string) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("localstore: checkpoint to %s: %w", dir, err)
	}
	return nil
}
