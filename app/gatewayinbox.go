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

var (
	_ gateway.InboxViews = gatewayConsent{}
	_ gateway.InboxMutes = gatewayDevices{}
)

// ViewsFor reads the documents of a page of the inbox in batches
// (conversation.Store.ViewsFor).
func (c gatewayConsent) ViewsFor(ctx context.Context, uid string, convs []string) (map[string]gateway.Conversation, []string, error) {
	docs, check, err := c.s.ViewsFor(ctx, uid, convs)
	if err != nil {
		return nil, nil, gatewayError(err)
	}
	out := make(map[string]gateway.Conversation, len(docs))
	for conv, d := range docs {
		out[conv] = d
	}
	return out, check, nil
}

// MuteLevels reads the mute levels of a page of the inbox in batches.
func (d gatewayDevices) MuteLevels(ctx context.Context, uid string, convs []string) (map[string]string, error) {
	return d.s.MuteLevels(ctx, uid, convs)
}
