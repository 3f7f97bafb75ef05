package localstore

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/natter-chat/natter/protocol"
)

// After returns up to limit rows of conv with seq > after, ascending, and
// whether more follow: one seek, then limit+1 steps.
func (s *Store) After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	if after == math.MaxUint64 || limit < 1 {
		return nil, false, nil
	}
	lo, hi := bounds(tagRow, conv, after+1, math.MaxUint64)
	now := s.now() // expired rows the sweep has not removed yet are skipped
	var out []*protocol.Message
	more := false
	err := s.scan(ctx, lo, hi, func(it *pebble.Iterator) error {
		for ok := it.First(); ok; ok = it.Next() {
			if len(out) == limit {
				more = true
				return nil
			}
			m, err := rowAt(conv, it)
			if err != nil {
				return err
			}
			if !m.Expired(now) {
				out = append(out, m)
			}
		}
		return nil
	})
	return out, more, err
}

// Before returns the newest limit rows of conv with seq < before,
// ascending, and whether older ones exist; before 0 means newest. It is
// one reverse seek and limit+1 steps back.
func (s *Store) Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error) {
	if before == 0 {
		before = math.MaxUint64
	} else if before == 1 || limit < 1 {
		return nil, false, nil
	}
	lo, hi := bounds(tagRow, conv, 0, before-1)
	now := s.now()
	var out []*protocol.Message
	more := false
	err := s.scan(ctx, lo, hi, func(it *pebble.Iterator) error {
		for ok := it.Last(); ok; ok = it.Prev() {
			if len(out) == limit {
				more = true
				return nil
			}
			m, err := rowAt(conv, it)
			if err != nil {
				return err
			}
			if !m.Expired(now) {
				out = append(out, m)
			}
		}
		return nil
	})
	slices.Reverse(out)
	return out, more, err
}

// Last returns the highest seq stored for conv, 0 if none: one reverse seek.
func (s *Store) Last(ctx context.Context, conv string) (uint64, error) {
	lo, hi := bounds(tagRow, conv, 0, math.MaxUint64)
	var seq uint64
	err := s.scan(ctx, lo, hi, func(it *pebble.Iterator) error {
		if it.Last() {
			seq = seqOf(it.Key())
		}
		return nil
	})
	return seq, err
}

// Count returns how many plain messages of conv have seq > after, walking
// the plain-message index (keys only, no values) from after.
func (s *Store) Count(ctx context.Context, conv string, after uint64) (uint64, error) {
	if after == math.MaxUint64 {
		return 0, nil
	}
	lo, hi := bounds(tagPlain, conv, after+1, math.MaxUint64)
	var n uint64
	err := s.scan(ctx, lo, hi, func(it *pebble.Iterator) error {
		for ok := it.First(); ok; ok = it.Next() {
			n++
			if n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}

// scan runs fn over an iterator bounded to [lo, hi) and closes it.
func (s *Store) scan(ctx context.Context, lo, hi []byte, fn func(*pebble.Iterator) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("localstore: iterator: %w", err)
	}
	ferr := fn(it)
	if err := it.Close(); err != nil && ferr == nil {
		ferr = fmt.Errorf("localstore: iterate: %w", err)
	}
	return ferr
}

// rowAt decodes the row under the iterator.
func rowAt(conv string, it *pebble.Iterator) (*protocol.Message, error) {
	v, err := it.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("localstore: read value: %w", err)
	}
	return decodeRow(conv, seqOf(it.Key()), v)
}
