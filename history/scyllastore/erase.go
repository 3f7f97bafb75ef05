package scyllastore

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/history"
)

var _ history.Eraser = (*Store)(nil)

// Erase makes the rows of conv at seqs tombstones and removes the quote
// snippets of the rows at unquote (history.Eraser). Each row is read
// first, so a seq not stored is skipped (an update alone would create
// it). The updates carry the server's write time, far above the seq
// timestamps the writer uses (append.go): an append of the same row
// again (natter history rebuild) cannot bring a body back. Cassandra
// drops the overwritten cells at compaction once gc_grace_seconds passed
// (docs/operations.md).
func (s *Store) Erase(ctx context.Context, conv string, seqs, unquote []uint64) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	for i, list := range [][]uint64{seqs, unquote} {
		for _, seq := range list {
			g.Go(func() error { return s.eraseOne(gctx, conv, seq, i == 1) })
		}
	}
	return g.Wait()
}

func (s *Store) eraseOne(ctx context.Context, conv string, seq uint64, unquote bool) error {
	q, err := s.query(ctx, s.q.rowsIn)
	if err != nil {
		return err
	}
	var rows []row
	if err := q.Bind(conv, s.bucket(seq), []int64{int64(seq)}).SelectRelease(&rows); err != nil {
		return fmt.Errorf("scyllastore: read (%s, %d) to erase: %w", conv, seq, err)
	}
	if len(rows) == 0 {
		return nil
	}
	st, args := s.q.eraseRow, []any{conv, s.bucket(seq), int64(seq)}
	if unquote {
		m := rows[0].message(conv)
		if !history.UnquoteRow(m) {
			return nil
		}
		st, args = s.q.unquoteRow, []any{encodeQuote(m.Quote), conv, s.bucket(seq), int64(seq)}
	}
	if q, err = s.query(ctx, st); err != nil {
		return err
	}
	if err := q.Bind(args...).ExecRelease(); err != nil {
		return fmt.Errorf("scyllastore: erase (%s, %d): %w", conv, seq, err)
	}
	return nil
}
