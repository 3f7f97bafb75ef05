package scyllastore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/protocol"
)

// ThreadAfter returns up to limit thread replies of conv under root with
// seq > after, ascending, and whether more follow: one read of the
// thread's index partition, then one read per bucket the replies are in.
func (s *Store) ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) ([]*protocol.Message, bool, error) {
	if after >= maxSeq || root > maxSeq || limit < 1 {
		return nil, false, nil
	}
	return s.thread(ctx, s.q.threadAfter, conv, root, after, limit)
}

// ThreadBefore returns the newest limit thread replies of conv under root
// with seq < before (0: the newest), ascending, and whether older ones
// exist.
func (s *Store) ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) ([]*protocol.Message, bool, error) {
	if before == 0 || before > maxSeq {
		before = maxSeq
	}
	if before == 1 || root > maxSeq || limit < 1 {
		return nil, false, nil
	}
	return s.thread(ctx, s.q.threadBefore, conv, root, before, limit)
}

// thread reads limit+1 seqs of the thread index beyond seq (st:
// threadAfter ascending, threadBefore descending), then their rows.
func (s *Store) thread(ctx context.Context, st stmt, conv string, root, seq uint64, limit int) ([]*protocol.Message, bool, error) {
	q, err := s.query(ctx, st)
	if err != nil {
		return nil, false, err
	}
	var seqs []int64
	if err := q.Bind(conv, int64(root), int64(seq), limit+1).SelectRelease(&seqs); err != nil {
		return nil, false, fmt.Errorf("scyllastore: thread %d of %s: %w", root, conv, err)
	}
	more := len(seqs) > limit
	if more {
		seqs = seqs[:limit]
	}
	useqs := make([]uint64, len(seqs))
	for i, n := range seqs {
		useqs[i] = uint64(n)
	}
	out, err := s.Rows(ctx, conv, useqs)
	return out, more, err
}

// Rows returns the rows of conv with the given seqs, ascending, leaving
// out those it does not hold: one query per bucket the seqs fall in, for
// the rows of a thread page and the originals of a page's quotes
// (history.RowsGetter).
func (s *Store) Rows(ctx context.Context, conv string, seqs []uint64) ([]*protocol.Message, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	byBucket := map[int64][]int64{}
	var buckets []int64
	for _, n := range seqs {
		b := s.bucket(n)
		if byBucket[b] == nil {
			buckets = append(buckets, b)
		}
		byBucket[b] = append(byBucket[b], int64(n))
	}
	got := make([][]row, len(buckets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	for i, b := range buckets {
		g.Go(func() error {
			q, err := s.query(gctx, s.q.rowsIn)
			if err != nil {
				return err
			}
			if err := q.Bind(conv, b, byBucket[b]).SelectRelease(&got[i]); err != nil {
				return fmt.Errorf("scyllastore: rows of (%s, %d): %w", conv, b, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]*protocol.Message, 0, len(seqs))
	for _, rows := range got {
		for i := range rows {
			out = append(out, rows[i].message(conv))
		}
	}
	// A reply indexed but not written yet (an Append under way) is
	// missing; the rest in seq order.
	slices.SortFunc(out, func(a, b *protocol.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// encodeQuote is the quote column: the quote's JSON, null for none.
func encodeQuote(q *protocol.Quote) []byte {
	if q == nil {
		return nil
	}
	b, _ := json.Marshal(q)
	return b
}

// decodeQuote reads the quote column of a row replying to replyTo.
func decodeQuote(b []byte, replyTo uint64) *protocol.Quote {
	if len(b) == 0 {
		return nil
	}
	var q protocol.Quote
	if json.Unmarshal(b, &q) != nil {
		return nil
	}
	q.Seq = replyTo
	return &q
}

// nullable is s, or null when empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
