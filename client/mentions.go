package client

import (
	"context"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// SendOptions are the optional fields of a plain message.
type SendOptions struct {
	// Mentions names the members the message mentions, or
	// protocol.MentionAll (owners and admins of a group only); at most
	// protocol.MaxMentions. The server drops repeats.
	Mentions []string
	// ReplyTo quotes an earlier message of the conversation by its seq:
	// the server copies its sender and a snippet into the message's quote.
	ReplyTo uint64
	// Thread posts the message into the thread under this root seq (a
	// plain message that is not itself a thread reply).
	Thread uint64
}

// SendWith sends a plain message with opts and returns the ack. An empty
// clientID gets a random UUIDv4.
func (c *Client) SendWith(ctx context.Context, conv, clientID string, body any, opts SendOptions) (*protocol.Ack, error) {
	return c.sendWith(ctx, conv, clientID, body, opts, false)
}

func (c *Client) sendWith(ctx context.Context, conv, clientID string, body any, opts SendOptions, resend bool) (*protocol.Ack, error) {
	return c.sendRequest(ctx, protocol.Request{Type: protocol.TypeSend, Conv: conv, ClientID: clientID, Resend: resend, Mentions: opts.Mentions,
		ReplyTo: opts.ReplyTo, Thread: opts.Thread}, body)
}

// Mute sets the user's mute level of conv for push notifications:
// protocol.MuteAll (none), protocol.MuteMentions (only messages that
// mention the user) or protocol.MuteNone (all, unmuted). A zero until
// keeps the level until changed; a later time ends it then.
func (c *Client) Mute(ctx context.Context, conv, level string, until time.Time) error {
	req := protocol.Request{Type: protocol.TypeMute, Conv: conv, Level: level}
	if !until.IsZero() {
		u := until.UTC().Format(time.RFC3339)
		req.Until = &u
	}
	return c.call(ctx, req, protocol.TypeOK, nil)
}
