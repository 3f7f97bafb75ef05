package conversation

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Read markers live under r.<conv>.<uid> as a decimal seq. They only move
// forwards: every change is a compare-and-set, so concurrent devices of one
// user cannot move a marker back.

func readKey(conv, uid string) string { return "r." + conv + "." + uid }

// ReadSeq returns uid's read marker in conv, 0 before any read.
func (s *Store) ReadSeq(ctx context.Context, conv, uid string) (uint64, error) {
	seq, _, err := s.readSeq(ctx, conv, uid)
	return seq, err
}

func (s *Store) readSeq(ctx context.Context, conv, uid string) (uint64, uint64, error) {
	e, err := s.kv.Get(ctx, readKey(conv, uid))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read marker %s/%s: %w", conv, uid, err)
	}
	seq, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("decode read marker %s/%s: %w", conv, uid, err)
	}
	return seq, e.Revision(), nil
}

// MarkRead moves uid's marker in conv to seq when that is further on, and
// reports whether it moved. The caller checks membership and clamps seq.
//
// A marker this process read or wrote before is moved with one
// compare-and-set on the remembered revision (every send moves the
// sender's marker); only when another process moved it meanwhile is it
// read again.
func (s *Store) MarkRead(ctx context.Context, conv, uid string, seq uint64) (bool, error) {
	key := readKey(conv, uid)
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
			return false, fmt.Errorf("move read marker %s/%s: %w", conv, uid, err)
		}
	}
	for attempt := 0; attempt < 50; attempt++ {
		cur, rev, err := s.readSeq(ctx, conv, uid)
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
			return false, fmt.Errorf("move read marker %s/%s: %w", conv, uid, err)
		}
		s.marks.put(key, seq, newRev)
		return true, nil
	}
	return false, fmt.Errorf("%w: read marker %s/%s changed too often", ErrConflict, conv, uid)
}
