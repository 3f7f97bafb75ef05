package gateway

import (
	"context"
	"encoding/json"

	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Delivery receipts. Client libraries report, per conversation, the
// highest seq that reached the device (delivered, cumulative, without an
// id). Writing each report would be a KV write per message per recipient,
// so the gateway only notes the furthest one per user and conversation in
// a markQueue (marks.go) and, once it has waited Config.DeliveredDelay,
// moves the d.<conv>.<uid> marker with one compare-and-set (it never moves
// back) and, when it moved, publishes one notice the fan-out turns into
// delivered pushes to the other members of groups of at most
// protocol.MaxNoticeMembers. The reports of a burst of messages, and of
// several devices of the user on this gateway, cost one write and one
// push.

// receiptChecks bounds the block checks of one receipts answer in flight.
const receiptChecks = 16

// newDeliveredMarks returns the queue of delivered markers.
func newDeliveredMarks(s *Server) *markQueue {
	return newMarkQueue(s, s.cfg.DeliveredDelay, s.moveDelivered)
}

// moveDelivered writes one coalesced delivered marker, clamped to the
// conversation's last seq (a client cannot mark messages to come), and
// announces it when it moved.
func (s *Server) moveDelivered(ctx context.Context, m markWrite) error {
	last, err := s.msgs.Last(ctx, m.conv)
	if err != nil {
		return err
	}
	moved, err := s.markers.MarkDelivered(ctx, m.conv, m.uid, min(m.seq, last))
	if err != nil {
		s.cfg.Logger.Warn("delivered marker not moved", "user", m.uid, "conv", m.conv, "err", err)
		return err
	}
	if !moved {
		return nil
	}
	data, _ := json.Marshal(schema.DeliveredNotice{User: m.uid, Seq: min(m.seq, last), Except: m.except})
	// Best effort, like every notice: the marker is written.
	_ = s.nc.Publish(schema.ConvDelivered(m.conv), data)
	return nil
}

// delivered notes the user's delivered marker; it is written later.
func (sess *session) delivered(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if req.Seq < 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "seq must be a non-negative integer")
	}
	pending, perr := sess.member(ctx, req.Conv)
	if perr != nil {
		return nil, perr
	}
	// The recipient of a message request reports no delivery until
	// accepting it, as with reads.
	if !pending && req.Seq > 0 {
		sess.srv.delivered.oweExcept(sess.user, req.Conv, uint64(req.Seq), sess.blockedByMe())
	}
	if protocol.QuietOnSuccess(req) {
		return nil, nil
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

// receipts answers every member's delivered and read markers, in groups
// of at most protocol.MaxReceiptsMembers. What a member would not share
// with the asker reads as 0: the markers of a message request's recipient
// who has not accepted it, and of members who blocked the asker.
func (sess *session) receipts(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	c, err := sess.srv.convs.Get(ctx, req.Conv, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	members := c.SortedMembers()
	if len(members) > protocol.MaxReceiptsMembers {
		return nil, protocol.Errorf(protocol.CodeTooLarge, "receipts are kept for conversations of at most %d members", protocol.MaxReceiptsMembers)
	}
	// Read markers that sends on this gateway moved are written first, as
	// for read and conversations (marks.go): one map lookup per member
	// when nothing is owed.
	for _, u := range members {
		if err := sess.srv.own.settle(ctx, u, req.Conv); err != nil {
			return nil, sess.fail(err)
		}
	}
	rs, err := sess.srv.markers.Receipts(ctx, req.Conv, members)
	if err != nil {
		return nil, sess.fail(err)
	}
	hidden := make([]bool, len(rs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(receiptChecks)
	for i, r := range rs {
		if r.User == sess.user || r.Delivered == 0 {
			continue
		}
		if c.StateFor(r.User) == protocol.ConvStateRequest {
			hidden[i] = true
			continue
		}
		g.Go(func() error {
			h, perr := sess.hiddenFrom(gctx, r.User)
			if perr != nil {
				return perr
			}
			hidden[i] = h
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err.(*protocol.Error)
	}
	for i := range rs {
		if hidden[i] {
			rs[i].Delivered, rs[i].Read = 0, 0
		}
	}
	return &protocol.ReceiptsFrame{Type: protocol.TypeReceipts, ID: req.ID, Conv: req.Conv, Receipts: rs}, nil
}
