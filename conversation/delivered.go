package conversation

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/protocol"
)

// Delivered markers live under d.<conv>.<uid>: how far every message of
// conv reached at least one of uid's devices. Like read markers they only
// move forwards; the gateway coalesces the clients' reports so that a
// marker is written at most about once a second per user and
// conversation, not once per message.

func deliveredKey(conv, uid string) string { return "d." + conv + "." + uid }

// receiptReads bounds the marker reads of one Receipts call in flight.
const receiptReads = 16

// MarkDelivered moves uid's delivered marker in conv to seq when that is
// further on, and reports whether it moved. The caller checks membership
// and clamps seq.
func (s *Store) MarkDelivered(ctx context.Context, conv, uid string, seq uint64) (bool, error) {
	return s.advance(ctx, deliveredKey(conv, uid), seq)
}

// Receipts returns the delivered and read markers of users in conv, in the
// order of users. A delivered marker below the read marker is reported as
// the read one: what was read was delivered, whether or not the reading
// device reported it.
func (s *Store) Receipts(ctx context.Context, conv string, users []string) ([]protocol.Receipt, error) {
	out := make([]protocol.Receipt, len(users))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(receiptReads)
	for i, u := range users {
		out[i].User = u
		g.Go(func() error {
			seq, _, err := s.markerAt(gctx, deliveredKey(conv, u), false)
			out[i].Delivered = seq
			return err
		})
		g.Go(func() error {
			seq, _, err := s.markerAt(gctx, readKey(conv, u), false)
			out[i].Read = seq
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Delivered = max(out[i].Delivered, out[i].Read)
	}
	return out, nil
}
