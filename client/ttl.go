package client

import (
	"context"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Disappearing messages (docs/protocol.md "Disappearing messages"). The
// client drops what expired: pages (Sync, History) leave out items
// whose expires_at has passed, and a message push that arrives after its
// expires_at is not delivered on Events. An application holding an item
// with ExpiresAt removes it then (Expired tells). An expired item counts
// as held for prev: the item after it may name it as prev.

// SetTTL sets conv's disappearing-messages ttl in seconds: 0 (off) or one
// of protocol.TTLs (or the server's test value). In a group the owner
// and admins may, in a direct conversation either member. It returns the
// conversation as it is now.
func (c *Client) SetTTL(ctx context.Context, conv string, seconds int64) (*protocol.Conversation, error) {
	return c.create(ctx, protocol.Request{Type: protocol.TypeUpdate, Conv: conv, TTL: &seconds})
}

// SetRetention keeps conv's messages retentionDays days (0: for ever):
// who may is as for SetTTL. A message sent under a retention of N days
// disappears N days after it was sent; messages sent before keep theirs.
func (c *Client) SetRetention(ctx context.Context, conv string, retentionDays int64) (*protocol.Conversation, error) {
	return c.create(ctx, protocol.Request{Type: protocol.TypeUpdate, Conv: conv, RetentionDays: &retentionDays})
}

// Expired reports whether m has disappeared by now.
func Expired(m *protocol.Message, now time.Time) bool { return m.ExpiresAt != "" && m.Expired(now) }

// dropExpired removes the expired items of a page.
func dropExpired(f *protocol.MessagesFrame) {
	f.Messages = protocol.FilterExpired(f.Messages, time.Now())
}

// expiredPush reports whether a pushed message frame's item has expired.
func expiredPush(h *frameHead) bool {
	return h.Type == protocol.TypeMessage && h.ExpiresAt != "" && protocol.Expired(h.ExpiresAt, time.Now())
}
