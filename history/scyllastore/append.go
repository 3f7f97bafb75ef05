package scyllastore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// tombstoneBody is the Body of a deleted message.
const tombstoneBody = `{}`

type bucketKey struct {
	conv   string
	bucket int64
}

// Append stores msgs and applies their edits and deletions, as
// history.Store describes: the batch behaves like its rows appended one by
// one in seq order. In three steps, each safe to repeat, so a batch can be
// appended again after any failure:
//  1. per (conv, bucket) of the batch: register the bucket in buckets (so
//     no row is ever stored where a page would not look) and read which of
//     the batch's seqs are stored already;
//  2. insert the rows not yet stored, WriteConcurrency at a time, with
//     their seq as the write timestamp;
//  3. apply the new edits and deletes in seq order, each reading its
//     target.
//
// A row already stored with other content fails the batch with
// history.ErrConflict before anything is inserted. EditSeq and Deleted of
// the input are ignored.
func (s *Store) Append(ctx context.Context, msgs []*protocol.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	groups := map[bucketKey][]*protocol.Message{}
	var keys []bucketKey
	dup := map[rowKey]*protocol.Message{}
	for _, m := range msgs {
		if m.Conv == "" || m.Seq == 0 || m.Seq > maxSeq || m.Ref > maxSeq {
			return fmt.Errorf("%w: conv %q seq %d ref %d", ErrInvalid, m.Conv, m.Seq, m.Ref)
		}
		if first := dup[rowKey{m.Conv, m.Seq}]; first != nil {
			// As if appended one by one: the second copy meets the first.
			if !history.Same(first, m) {
				return conflict(first, m)
			}
			continue
		}
		dup[rowKey{m.Conv, m.Seq}] = m
		k := bucketKey{m.Conv, s.bucket(m.Seq)}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], m)
	}

	fresh := make([][]*protocol.Message, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	for i, k := range keys {
		g.Go(func() error {
			if err := s.insertBucket(gctx, k); err != nil {
				return err
			}
			var err error
			fresh[i], err = s.notStored(gctx, k, groups[k])
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	var events []*protocol.Message
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(s.writeConc)
	for _, ms := range fresh {
		for _, m := range ms {
			if m.Kind == protocol.KindEdit || m.Kind == protocol.KindDelete {
				events = append(events, m)
			}
			g.Go(func() error { return s.insertRow(gctx, m) })
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}

	slices.SortFunc(events, func(a, b *protocol.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, m := range events {
		if err := s.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

type rowKey struct {
	conv string
	seq  uint64
}

// notStored returns the rows of ms (all in bucket k) that are not stored,
// or history.ErrConflict if one is stored with other content: one read
// per partition, seq IN the batch's seqs.
func (s *Store) notStored(ctx context.Context, k bucketKey, ms []*protocol.Message) ([]*protocol.Message, error) {
	seqs := make([]int64, len(ms))
	for i, m := range ms {
		seqs[i] = int64(m.Seq)
	}
	q, err := s.query(ctx, s.q.stored)
	if err != nil {
		return nil, err
	}
	var rows []row
	if err := q.Bind(k.conv, k.bucket, seqs).SelectRelease(&rows); err != nil {
		return nil, fmt.Errorf("scyllastore: read stored rows of (%s, %d): %w", k.conv, k.bucket, err)
	}
	stored := make(map[uint64]*protocol.Message, len(rows))
	for i := range rows {
		stored[uint64(rows[i].Seq)] = rows[i].message(k.conv)
	}
	out := ms[:0:0]
	for _, m := range ms {
		old := stored[m.Seq]
		switch {
		case old == nil:
			out = append(out, m)
		case !history.Same(old, m):
			return nil, conflict(old, m)
		}
	}
	return out, nil
}

// conflict is the error of m offered where old is stored.
func conflict(old, m *protocol.Message) error {
	return fmt.Errorf("%w: (%s, %d) from %s, offered again from %s", history.ErrConflict, m.Conv, m.Seq, old.Sender, m.Sender)
}

func (s *Store) insertBucket(ctx context.Context, k bucketKey) error {
	q, err := s.query(ctx, s.q.insertBucket)
	if err != nil {
		return err
	}
	if err := q.Bind(k.conv, k.bucket).ExecRelease(); err != nil {
		return fmt.Errorf("scyllastore: insert bucket (%s, %d): %w", k.conv, k.bucket, err)
	}
	return nil
}

func (s *Store) insertRow(ctx context.Context, m *protocol.Message) error {
	q, err := s.query(ctx, s.q.insertRow)
	if err != nil {
		return err
	}
	err = q.Bind(m.Conv, s.bucket(m.Seq), int64(m.Seq), m.Sender, m.ClientID, m.TS, m.Kind, int64(m.Ref), []byte(m.Body)).
		WithTimestamp(int64(m.Seq)).ExecRelease()
	if err != nil {
		return fmt.Errorf("scyllastore: insert (%s, %d): %w", m.Conv, m.Seq, err)
	}
	return nil
}

// target is what apply reads of an edit's or delete's target.
type target struct {
	Sender  string `db:"sender"`
	Kind    string `db:"kind"`
	EditSeq int64  `db:"edit_seq"`
	Deleted bool   `db:"deleted"`
}

// apply applies the edit or delete m to its target, if history.Apply
// allows.
func (s *Store) apply(ctx context.Context, m *protocol.Message) error {
	if m.Ref == 0 || m.Ref >= m.Seq {
		return nil // history.Apply would refuse it; spare the read
	}
	bucket := s.bucket(m.Ref)
	q, err := s.query(ctx, s.q.target)
	if err != nil {
		return err
	}
	var r target
	err = q.Bind(m.Conv, bucket, int64(m.Ref)).GetRelease(&r)
	if errors.Is(err, gocql.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("scyllastore: read target (%s, %d): %w", m.Conv, m.Ref, err)
	}
	t := &protocol.Message{Conv: m.Conv, Seq: m.Ref, Sender: r.Sender, Kind: r.Kind, EditSeq: uint64(r.EditSeq), Deleted: r.Deleted}
	if !history.Apply(t, m) {
		return nil
	}
	if !t.Deleted {
		if q, err = s.query(ctx, s.q.setEdit); err != nil {
			return err
		}
		// Written at the edit's seq: should an older edit race past the
		// check above, the newer cells still win.
		err = q.Bind([]byte(t.Body), int64(t.EditSeq), m.Conv, bucket, int64(m.Ref)).
			WithTimestamp(int64(t.EditSeq)).ExecRelease()
	} else {
		if q, err = s.query(ctx, s.q.setDel); err != nil {
			return err
		}
		// Above every cell of the row: the original (at the target's seq)
		// and the latest edit (at its seq), so both bodies are gone.
		err = q.Bind(m.Conv, bucket, int64(m.Ref)).
			WithTimestamp(max(int64(m.Seq), r.EditSeq)).ExecRelease()
	}
	if err != nil {
		return fmt.Errorf("scyllastore: apply %s %d to (%s, %d): %w", m.Kind, m.Seq, m.Conv, m.Ref, err)
	}
	return nil
}
