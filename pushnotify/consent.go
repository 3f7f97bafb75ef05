package pushnotify

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/natter-chat/natter/conversation"
)

// opensRequest reports whether a membership event created a conversation,
// which may be a message request: its recipient gets one notification
// then, and none for the request's messages until accepting it.
func opensRequest(data []byte) bool {
	var ev conversation.Event
	return json.Unmarshal(data, &ev) == nil && ev.Action == conversation.ActionCreated
}

// request notifies the recipients of the message request created at seq
// (the members who have not accepted conv) who are offline and have not
// muted it, and reports whether it could.
func (d *Dispatcher) request(ctx context.Context, conv string, seq uint64, data []byte, p *pending) bool {
	var ev conversation.Event
	if json.Unmarshal(data, &ev) != nil {
		return true
	}
	doc, err := d.members.Get(ctx, conv)
	if errors.Is(err, conversation.ErrNotFound) {
		return true
	}
	if err != nil {
		d.cfg.Logger.Warn("pushnotify cannot read a request, will retry", "conv", conv, "seq", seq, "err", err)
		return false
	}
	for _, u := range doc.Pending {
		skip, err := d.skip(ctx, u, conv, ev.By, false)
		if err != nil {
			d.cfg.Logger.Warn("pushnotify cannot check a recipient, will retry", "user", u, "conv", conv, "seq", seq, "err", err)
			return false
		}
		if skip {
			continue
		}
		if !d.queue(p, Message{User: u, Conv: conv, Sender: ev.By, Seq: seq, Request: true}) {
			return false
		}
	}
	return true
}
