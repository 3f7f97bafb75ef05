package gateway

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Disappearing messages (docs/protocol.md "Disappearing messages"). A
// send takes the conversation's ttl from its send view (memberview.go:
// a ttl change stores an event, which refuses every view kept from
// before it), stamps the envelope with expires_at and the stored message
// with Nats-TTL, and the CHAT stream removes it then. An edit, delete
// or reaction expires exactly with its target (not by the ttl: an edit
// of a lasting message lasts), a reply no later than the message it
// quotes: none outlives what disappeared.

// msgExpiry is what a send's expiry derives from: when it was sent and the
// expiry of what it refers to ("" for none); events (an edit, delete or
// reaction) take exactly their target's.
type msgExpiry struct {
	now    time.Time
	limit  string
	events bool
}

// of is the expires_at of the item under the conversation's ttl.
func (e msgExpiry) of(ttl int64) string {
	if e.events {
		return e.limit
	}
	return protocol.ExpiresAt(e.now, ttl, e.limit)
}

// header sets or clears msg's Nats-TTL for an item expiring at
// expiresAt. Nothing is set for an item that does not expire.
func (e msgExpiry) header(msg *nats.Msg, expiresAt string) {
	if h, ok := protocol.TTLHeader(expiresAt, e.now); ok {
		msg.Header.Set(schema.HeaderTTL, h)
		return
	}
	msg.Header.Del(schema.HeaderTTL)
}

// stamp gives msg, the stored form of env, the expiry of ttl seconds:
// the ttl changed between the send view and the publish.
func (e msgExpiry) stamp(msg *nats.Msg, env *protocol.Envelope, ttl int64) {
	env.ExpiresAt = e.of(ttl)
	msg.Data = appendEnvelope(msg.Data[:0], env)
	e.header(msg, env.ExpiresAt)
}

// lastPreviewScan bounds how many of the newest items lastLive reads for
// one that previews (a message or event, not an edit or reaction).
const lastPreviewScan = 20

// lastLive is the preview of conv's newest message or event still
// there, read from the history: what the list shows once the summary's
// preview disappeared. nil when none is among the newest few.
func (sess *session) lastLive(ctx context.Context, conv string) (*protocol.Last, error) {
	page, _, err := sess.srv.msgs.Before(ctx, conv, 0, lastPreviewScan)
	if err != nil {
		return nil, err
	}
	for i := len(page) - 1; i >= 0; i-- {
		m := page[i]
		if m.Kind != protocol.KindMessage && m.Kind != protocol.KindEvent {
			continue
		}
		l := &protocol.Last{Seq: m.Seq, Sender: m.Sender, TS: m.TS, Kind: m.Kind, Deleted: m.Deleted, ExpiresAt: m.ExpiresAt}
		if !m.Deleted {
			l.Snippet = protocol.Snippet(m.Body, m.Kind)
		}
		return l, nil
	}
	return nil, nil
}
