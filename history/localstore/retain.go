package localstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

var _ history.Dropper = (*Store)(nil)

// Drop deletes the rows of conv at seqs with their index entries, in one
// batch (history.Dropper): a conversation's retention.
func (s *Store) Drop(ctx context.Context, conv string, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	unlock := s.lockConvs([]string{conv})
	defer unlock()
	b := s.db.NewIndexedBatch()
	defer b.Close()
	for _, seq := range seqs {
		row, err := get(b, conv, seq)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := dropRow(b, conv, seq, row); err != nil {
			return err
		}
	}
	if err := b.Commit(s.sync); err != nil {
		return fmt.Errorf("localstore: commit drop of %d rows of %s: %w", len(seqs), conv, err)
	}
	return nil
}

// dropRow deletes row, stored at (conv, seq), in b: the row, its
// plain-message, thread and expiry entries; a thread reply also leaves
// its root's count (unthread). Expire and Drop both remove rows so.
func dropRow(b *pebble.Batch, conv string, seq uint64, row *protocol.Message) error {
	dels := [][]byte{key(tagRow, conv, seq), key(tagPlain, conv, seq)}
	if row.Thread != 0 {
		dels = append(dels, threadKey(conv, row.Thread, seq))
	}
	if row.ExpiresAt != "" {
		dels = append(dels, expiryKey(row.ExpiresAt, conv, seq))
	}
	for _, k := range dels {
		if err := b.Delete(k, nil); err != nil {
			return fmt.Errorf("localstore: drop (%s, %d): %w", conv, seq, err)
		}
	}
	if row.Thread != 0 && row.Kind == protocol.KindMessage {
		return unthread(b, conv, row.Thread, seq)
	}
	return nil
}

// unthread takes the reply seq, whose thread entry b already deleted,
// off its root's ThreadCount and ThreadLastSeq: the count goes down by
// one, and the last seq becomes the newest reply left. A root no longer
// stored (dropped or expired before its reply) changes nothing.
func unthread(b *pebble.Batch, conv string, root, seq uint64) error {
	r, err := get(b, conv, root)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.ThreadCount == 0 && r.ThreadLastSeq == 0 {
		return nil
	}
	if r.ThreadCount > 0 {
		r.ThreadCount--
	}
	if r.ThreadLastSeq == seq || r.ThreadCount == 0 {
		last, err := lastReply(b, conv, root)
		if err != nil {
			return err
		}
		r.ThreadLastSeq = last
	}
	if err := b.Set(key(tagRow, conv, root), encodeRow(r), nil); err != nil {
		return fmt.Errorf("localstore: unthread (%s, %d): %w", conv, root, err)
	}
	return nil
}

// lastReply returns the newest reply under root that b (and the
// database under it) still holds, 0 for none.
func lastReply(b *pebble.Batch, conv string, root uint64) (uint64, error) {
	it, err := b.NewIter(&pebble.IterOptions{
		LowerBound: threadKey(conv, root, 0),
		UpperBound: append(threadKey(conv, root, math.MaxUint64), 0),
	})
	if err != nil {
		return 0, fmt.Errorf("localstore: thread of (%s, %d): %w", conv, root, err)
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	k := it.Key()
	return binary.BigEndian.Uint64(k[len(k)-8:]), nil
}
