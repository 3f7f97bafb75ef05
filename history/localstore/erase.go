package localstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/natter-chat/natter/history"
)

var _ history.Eraser = (*Store)(nil)

// Erase makes the rows of conv at seqs tombstones and removes the quote
// snippets of the rows at unquote (history.Eraser), in one batch. Then it
// compacts the conversation's rows, so the old values are gone from the
// files too and not only from what reads see.
func (s *Store) Erase(ctx context.Context, conv string, seqs, unquote []uint64) error {
	if len(seqs) == 0 && len(unquote) == 0 {
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
	b := s.db.NewIndexedBatch()
	err := func() error {
		defer b.Close()
		for i, list := range [][]uint64{seqs, unquote} {
			for _, seq := range list {
				m, err := get(b, conv, seq)
				if errors.Is(err, pebble.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if i == 0 {
					history.EraseRow(m)
				} else if !history.UnquoteRow(m) {
					continue
				}
				if err := b.Set(key(tagRow, conv, seq), encodeRow(m), nil); err != nil {
					return fmt.Errorf("localstore: erase (%s, %d): %w", conv, seq, err)
				}
			}
		}
		if err := b.Commit(s.sync); err != nil {
			return fmt.Errorf("localstore: commit erase of %s: %w", conv, err)
		}
		return nil
	}()
	unlock()
	if err != nil {
		return err
	}
	lo, hi := bounds(tagRow, conv, 0, ^uint64(0))
	if err := s.db.Compact(ctx, lo, hi, false); err != nil {
		return fmt.Errorf("localstore: compact %s after erase: %w", conv, err)
	}
	return nil
}
