package scyllastore

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/protocol"
)

// bucketPage is how many bucket numbers one read of the buckets table
// fetches; pages usually need one or two buckets.
const bucketPage = 16

// row is a messages row as pages read it.
type row struct {
	Seq      int64  `db:"seq"`
	Sender   string `db:"sender"`
	ClientID string `db:"client_id"`
	TS       string `db:"ts"`
	Kind     string `db:"kind"`
	Ref      int64  `db:"ref"`
	Body     []byte `db:"body"`
	EditBody []byte `db:"edit_body"`
	EditSeq  int64  `db:"edit_seq"`
	Deleted  bool   `db:"deleted"`
	// The columns of replies and threads (migrate step 2).
	ReplyTo       int64    `db:"reply_to"`
	Quote         []byte   `db:"quote"`
	Thread        int64    `db:"thread"`
	Mentions      []string `db:"mentions"`
	DeletedBy     string   `db:"deleted_by"`
	ThreadCount   int64    `db:"thread_count"`
	ThreadLastSeq int64    `db:"thread_last_seq"`
	// ExpiresAt (migrate step 3): a disappearing message's (expiry.go).
	ExpiresAt string `db:"expires_at"`
	// ThreadExpiring (migrate step 3): a root some of whose replies
	// expire; reads recount its thread (expiry.go).
	ThreadExpiring bool `db:"thread_expiring"`
}

func (r *row) message(conv string) *protocol.Message {
	m := &protocol.Message{
		Conv: conv, Seq: uint64(r.Seq), Sender: r.Sender, ClientID: r.ClientID, TS: r.TS,
		Kind: r.Kind, Ref: uint64(r.Ref), Body: r.Body, EditSeq: uint64(r.EditSeq), Deleted: r.Deleted,
		ReplyTo: uint64(r.ReplyTo), Quote: decodeQuote(r.Quote, uint64(r.ReplyTo)), Thread: uint64(r.Thread),
		Mentions: r.Mentions, DeletedBy: r.DeletedBy,
		ThreadCount: uint64(r.ThreadCount), ThreadLastSeq: uint64(r.ThreadLastSeq),
		ExpiresAt: r.ExpiresAt,
	}
	switch {
	case r.Deleted:
		m.Body = []byte(tombstoneBody)
	case r.EditSeq > 0:
		m.Body = r.EditBody
	}
	return m
}

// After returns up to limit rows of conv with seq > after, ascending, and
// whether more follow. It walks conv's buckets upwards from after's.
func (s *Store) After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	if after >= maxSeq || limit < 1 {
		return nil, false, nil
	}
	out, err := s.page(ctx, conv, s.bucket(after+1), true, true, s.q.rowsAfter, int64(after), limit+1)
	if err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// Before returns the newest limit rows of conv with seq < before,
// ascending, and whether older ones exist; before 0 means newest. It walks
// conv's buckets downwards from before's.
func (s *Store) Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error) {
	newest := before == 0 || before > maxSeq
	if newest {
		before = maxSeq
	}
	if before == 1 || limit < 1 {
		return nil, false, nil
	}
	out, err := s.page(ctx, conv, s.bucket(before-1), false, !newest, s.q.rowsBefore, int64(before), limit+1) // newest first
	if err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	slices.Reverse(out)
	return out, more, nil
}

// Last returns the highest seq stored for conv, 0 if none: the newest
// bucket, then its newest row (a bucket can be registered yet empty if an
// Append failed between its steps, so it keeps looking).
func (s *Store) Last(ctx context.Context, conv string) (uint64, error) {
	var last uint64
	err := s.buckets(ctx, conv, maxSeq, false, func(b int64) (bool, error) {
		q, err := s.query(ctx, s.q.lastSeq)
		if err != nil {
			return false, err
		}
		var seqs []int64
		if err := q.Bind(conv, b).SelectRelease(&seqs); err != nil {
			return false, fmt.Errorf("scyllastore: last of (%s, %d): %w", conv, b, err)
		}
		if len(seqs) > 0 {
			last = uint64(seqs[0])
			return true, nil
		}
		return false, nil
	})
	return last, err
}

// Count returns how many plain messages of conv have seq > after: one
// count per bucket from after's upwards.
func (s *Store) Count(ctx context.Context, conv string, after uint64) (uint64, error) {
	if after >= maxSeq {
		return 0, nil
	}
	var n uint64
	err := s.buckets(ctx, conv, s.bucket(after+1), true, func(b int64) (bool, error) {
		q, err := s.query(ctx, s.q.countPlain)
		if err != nil {
			return false, err
		}
		var c int64
		if err := q.Bind(conv, b, int64(after), protocol.KindMessage).GetRelease(&c); err != nil {
			return false, fmt.Errorf("scyllastore: count (%s, %d): %w", conv, b, err)
		}
		n += uint64(c)
		return false, nil
	})
	return n, err
}

// pageWidth is how many buckets a page reads at once after the first: a
// conversation whose newest bucket does not fill a page is likely sparse,
// so its next buckets are read in parallel rather than one round trip each.
const pageWidth = 8

// page reads up to want rows of conv beyond seq (st: rowsAfter upwards or
// rowsBefore downwards), bucket by bucket from bucket from: the first
// bucket alone, then pageWidth at a time in parallel, in bucket order.
//
// With guess, seq is a bound the client named (a sync's after, a
// scroll-back's before: usually a seq of its own in the conversation), so
// bucket from most likely holds rows of conv: its rows are read at the
// same time as the buckets index instead of after it, one round trip
// less. They are used only when the index says from is the first bucket,
// where they are exactly the read the page would have made.
func (s *Store) page(ctx context.Context, conv string, from int64, up, guess bool, st stmt, seq int64, want int) ([]*protocol.Message, error) {
	type result struct {
		rows []row
		err  error
	}
	var early chan result // bucket from's rows, read with the index
	if guess {
		ch := make(chan result, 1)
		go func() {
			rows, err := s.rows(ctx, st, conv, from, seq, want)
			ch <- result{rows, err}
		}()
		early = ch
	}
	var out []*protocol.Message
	var pending []int64
	width := 1
	flush := func() (bool, error) {
		got := make([][]row, len(pending))
		need := want - len(out)
		g, gctx := errgroup.WithContext(ctx)
		for i, b := range pending {
			if early != nil && i == 0 && b == from && len(out) == 0 {
				r := <-early
				if r.err != nil {
					return false, r.err
				}
				got[0] = r.rows
				continue
			}
			g.Go(func() error {
				var err error
				got[i], err = s.rows(gctx, st, conv, b, seq, need)
				return err
			})
		}
		early = nil // from is the first bucket or none: no later flush reads it
		if err := g.Wait(); err != nil {
			return false, err
		}
		pending, width = pending[:0], pageWidth
		for _, rows := range got {
			for i := range rows {
				if len(out) == want {
					return true, nil
				}
				out = append(out, rows[i].message(conv))
			}
		}
		return len(out) == want, nil
	}
	err := s.buckets(ctx, conv, from, up, func(b int64) (bool, error) {
		pending = append(pending, b)
		if len(pending) < width {
			return false, nil
		}
		return flush()
	})
	if err == nil && len(pending) > 0 {
		_, err = flush()
	}
	return out, err
}

// buckets calls fn with conv's buckets from `from` upwards (up) or
// downwards, until fn returns true or an error.
func (s *Store) buckets(ctx context.Context, conv string, from int64, up bool, fn func(int64) (bool, error)) error {
	st := s.q.bucketsUpTo
	if up {
		st = s.q.bucketsFrom
	}
	q, err := s.query(ctx, st)
	if err != nil {
		return err
	}
	iter := q.Bind(conv, from).PageSize(bucketPage).Iter()
	var b int64
	for iter.Scan(&b) {
		done, err := fn(b)
		if err != nil {
			_ = iter.Close()
			return err
		}
		if done {
			break
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("scyllastore: buckets of %s: %w", conv, err)
	}
	return nil
}

// rows reads up to limit rows of one partition beyond seq.
func (s *Store) rows(ctx context.Context, st stmt, conv string, bucket, seq int64, limit int) ([]row, error) {
	q, err := s.query(ctx, st)
	if err != nil {
		return nil, err
	}
	var rows []row
	if err := q.Bind(conv, bucket, seq, limit).SelectRelease(&rows); err != nil {
		return nil, fmt.Errorf("scyllastore: rows of (%s, %d): %w", conv, bucket, err)
	}
	return rows, s.recount(ctx, conv, rows)
}
