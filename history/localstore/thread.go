package localstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/natter-chat/natter/protocol"
)

// ThreadAfter returns up to limit thread replies of conv under root with
// seq > after, ascending, and whether more follow: one seek in the thread
// index, limit+1 steps, and a point read of each row.
func (s *Store) ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) ([]*protocol.Message, bool, error) {
	if after == math.MaxUint64 || limit < 1 {
		return nil, false, nil
	}
	return s.thread(ctx, conv, root, after+1, math.MaxUint64, limit, true)
}

// ThreadBefore returns the newest limit thread replies of conv under root
// with seq < before (0: the newest), ascending, and whether older ones
// exist: one reverse seek in the thread index and limit+1 steps back.
func (s *Store) ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) ([]*protocol.Message, bool, error) {
	if before == 0 {
		before = math.MaxUint64
	} else if before == 1 || limit < 1 {
		return nil, false, nil
	}
	out, more, err := s.thread(ctx, conv, root, 0, before-1, limit, false)
	slices.Reverse(out)
	return out, more, err
}

// thread reads the replies under root with seqs in [from, to], forwards or
// backwards, up to limit, and whether more exist beyond.
func (s *Store) thread(ctx context.Context, conv string, root, from, to uint64, limit int, forward bool) ([]*protocol.Message, bool, error) {
	lo := threadKey(conv, root, from)
	hi := append(threadKey(conv, root, to), 0)
	var seqs []uint64
	more := false
	err := s.scan(ctx, lo, hi, func(it *pebble.Iterator) error {
		ok := it.First()
		if !forward {
			ok = it.Last()
		}
		for ; ok; ok = step(it, forward) {
			if len(seqs) == limit {
				more = true
				return nil
			}
			seqs = append(seqs, binary.BigEndian.Uint64(it.Key()[len(it.Key())-8:]))
		}
		return nil
	})
	if err != nil || len(seqs) == 0 {
		return nil, false, err
	}
	out, err := s.Rows(ctx, conv, seqs)
	return out, more, err
}

func step(it *pebble.Iterator, forward bool) bool {
	if forward {
		return it.Next()
	}
	return it.Prev()
}

// Rows returns the rows of conv with the given seqs, ascending as seqs
// are, leaving out those it does not hold (or that expired): one point
// read each, for the rows of a thread page and the originals of a page's
// quotes (history.RowsGetter).
func (s *Store) Rows(_ context.Context, conv string, seqs []uint64) ([]*protocol.Message, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	out := make([]*protocol.Message, 0, len(seqs))
	now := s.now()
	for _, seq := range seqs {
		v, closer, err := s.db.Get(key(tagRow, conv, seq))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("localstore: get (%s, %d): %w", conv, seq, err)
		}
		m, err := decodeRow(conv, seq, v)
		closer.Close()
		if err != nil {
			return nil, err
		}
		if !m.Expired(now) {
			out = append(out, m)
		}
	}
	return out, nil
}
