package app

import (
	"context"

	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/inbox"
)

var _ gateway.Inbox = gatewayInbox{}

// gatewayInbox is the inbox store as the gateway's Inbox.
type gatewayInbox struct{ s *inbox.Store }

// summary is an inbox.Summary as a gateway.Summary.
type summary struct{ *inbox.Summary }

func (s summary) Top() uint64 { return s.TopSeq() }

func (i gatewayInbox) Summaries(ctx context.Context, convs []string) (map[string]gateway.Summary, error) {
	sums, err := i.s.Summaries(ctx, convs)
	out := make(map[string]gateway.Summary, len(sums))
	for c, s := range sums {
		out[c] = summary{s}
	}
	return out, err
}

func (i gatewayInbox) Mentions(ctx context.Context, uid string, convs []string) (map[string][]uint64, error) {
	return i.s.Mentions(ctx, uid, convs)
}

func (i gatewayInbox) Head(ctx context.Context, uid string) ([]string, uint64, error) {
	h, err := i.s.Head(ctx, uid)
	return h.Convs, h.Floor, err
}

func (i gatewayInbox) MergeHead(ctx context.Context, uid string, convs []string, acts []uint64, floor uint64) error {
	return i.s.MergeHead(ctx, uid, convs, acts, floor)
}
