package scyllastore

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/history"
)

var _ history.Dropper = (*Store)(nil)

// Drop deletes the rows of conv at seqs and their thread index entries
// (history.Dropper): a conversation's retention. Each bucket's rows are
// read first, for the threads they are replies in, then deleted with one
// statement. The deletes carry the server's write time, far above the
// seq timestamps the writer uses (append.go): an append of the same rows
// again (natter history rebuild) cannot bring them back. The buckets
// table keeps the bucket even when it is left empty (a writer may be
// adding to it); pages step over an empty bucket.
//
// A dropped reply's root is not updated here: retention drops a prefix
// of the conversation, so a reply's root (an older message) is dropped
// with it.
func (s *Store) Drop(ctx context.Context, conv string, seqs []uint64) error {
	byBucket := map[int64][]int64{}
	for _, seq := range seqs {
		if seq == 0 || seq > maxSeq {
			continue
		}
		b := s.bucket(seq)
		byBucket[b] = append(byBucket[b], int64(seq))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	for b, in := range byBucket {
		g.Go(func() error { return s.dropBucket(gctx, conv, b, in) })
	}
	return g.Wait()
}

func (s *Store) dropBucket(ctx context.Context, conv string, bucket int64, seqs []int64) error {
	q, err := s.query(ctx, s.q.rowsIn)
	if err != nil {
		return err
	}
	var rows []row
	if err := q.Bind(conv, bucket, seqs).SelectRelease(&rows); err != nil {
		return fmt.Errorf("scyllastore: read rows of %s to drop: %w", conv, err)
	}
	for _, r := range rows {
		if r.Thread == 0 {
			continue
		}
		if q, err = s.query(ctx, s.q.dropThread); err != nil {
			return err
		}
		if err := q.Bind(conv, r.Thread, r.Seq).ExecRelease(); err != nil {
			return fmt.Errorf("scyllastore: drop thread entry (%s, %d): %w", conv, r.Seq, err)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if q, err = s.query(ctx, s.q.dropRows); err != nil {
		return err
	}
	if err := q.Bind(conv, bucket, seqs).ExecRelease(); err != nil {
		return fmt.Errorf("scyllastore: drop rows of %s: %w", conv, err)
	}
	return nil
}
