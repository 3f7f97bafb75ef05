package localstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// Append stores msgs in one batch, applying edits and deletions to their
// targets as history.Store describes; the batch behaves like its rows
// appended one by one in seq order. Rows already stored are skipped, so
// a batch may be appended again; a row stored with other content fails
// the whole batch with history.ErrConflict. EditSeq and Deleted of the input are
// ignored: they are derived from the edit and delete rows.
func (s *Store) Append(ctx context.Context, msgs []*protocol.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	convs := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if err := checkKey(m); err != nil {
			return err
		}
		convs = append(convs, m.Conv)
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	unlock := s.lockConvs(convs)
	defer unlock()

	// An indexed batch answers reads with its own writes, so a target and
	// its edit may come in the same batch.
	b := s.db.NewIndexedBatch()
	defer b.Close()
	// Seq order makes a batch behave like its rows appended one by one in
	// stream order; the stable sort keeps the first of two copies of a row.
	sorted := slices.Clone(msgs)
	slices.SortStableFunc(sorted, func(a, b *protocol.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, m := range sorted {
		if err := s.appendOne(b, m); err != nil {
			return err
		}
	}
	if err := b.Commit(s.sync); err != nil {
		return fmt.Errorf("localstore: commit %d rows: %w", len(msgs), err)
	}
	return nil
}

func (s *Store) appendOne(b *pebble.Batch, m *protocol.Message) error {
	k := key(tagRow, m.Conv, m.Seq)
	if old, err := get(b, m.Conv, m.Seq); err == nil {
		if !history.Same(old, m) {
			return fmt.Errorf("%w: (%s, %d) from %s, offered again from %s", history.ErrConflict, m.Conv, m.Seq, old.Sender, m.Sender)
		}
		return nil // already stored: idempotent
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	row := *m
	row.EditSeq, row.Deleted, row.DeletedBy, row.ThreadCount, row.ThreadLastSeq, row.Prev = 0, false, "", 0, 0, 0
	if err := b.Set(k, encodeRow(&row), nil); err != nil {
		return fmt.Errorf("localstore: set row: %w", err)
	}
	if m.ExpiresAt != "" {
		if err := b.Set(expiryKey(m.ExpiresAt, m.Conv, m.Seq), nil, nil); err != nil {
			return fmt.Errorf("localstore: set expiry index: %w", err)
		}
	}
	switch m.Kind {
	case protocol.KindMessage:
		if err := b.Set(key(tagPlain, m.Conv, m.Seq), nil, nil); err != nil {
			return fmt.Errorf("localstore: set index: %w", err)
		}
		if m.Thread != 0 {
			return s.countThread(b, &row)
		}
	case protocol.KindEdit, protocol.KindDelete:
		return s.apply(b, m)
	}
	return nil
}

// apply applies the edit or delete m to its target, if history.Apply
// allows.
func (s *Store) apply(b *pebble.Batch, m *protocol.Message) error {
	if m.Ref == 0 {
		return nil
	}
	t, err := get(b, m.Conv, m.Ref)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !history.Apply(t, m) {
		return nil
	}
	if err := b.Set(key(tagRow, t.Conv, t.Seq), encodeRow(t), nil); err != nil {
		return fmt.Errorf("localstore: update target: %w", err)
	}
	return nil
}

// countThread indexes the thread reply r under its root and counts it on
// the root, if history.ApplyThread allows: a reply whose root is not
// stored (or is no root) is indexed all the same, so the thread pages
// show what was posted to it.
func (s *Store) countThread(b *pebble.Batch, r *protocol.Message) error {
	if r.Thread >= r.Seq {
		return nil
	}
	if err := b.Set(threadKey(r.Conv, r.Thread, r.Seq), nil, nil); err != nil {
		return fmt.Errorf("localstore: set thread index: %w", err)
	}
	t, err := get(b, r.Conv, r.Thread)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !history.ApplyThread(t, r) {
		return nil
	}
	if err := b.Set(key(tagRow, t.Conv, t.Seq), encodeRow(t), nil); err != nil {
		return fmt.Errorf("localstore: update thread root: %w", err)
	}
	return nil
}

// get reads the row (conv, seq), pebble.ErrNotFound if absent.
func get(b *pebble.Batch, conv string, seq uint64) (*protocol.Message, error) {
	v, closer, err := b.Get(key(tagRow, conv, seq))
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("localstore: get (%s, %d): %w", conv, seq, err)
	}
	defer closer.Close()
	return decodeRow(conv, seq, v)
}
