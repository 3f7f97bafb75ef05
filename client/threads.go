package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/natter-chat/natter/protocol"
)

// SendOptions are the optional fields of a plain message.
type SendOptions struct {
	// ReplyTo quotes an earlier message of the conversation by its seq:
	// the server copies its sender and a snippet into the message's quote.
	ReplyTo uint64
	// Thread posts the message into the thread under this root seq (a
	// plain message that is not itself a thread reply).
	Thread uint64
	// Mentions names the members the message mentions, or
	// protocol.MentionAll; at most protocol.MaxMentions.
	Mentions []string
}

// SendWith sends a plain message with opts and returns the ack. An empty
// clientID gets a random UUIDv4.
func (c *Client) SendWith(ctx context.Context, conv, clientID string, body any, opts SendOptions) (*protocol.Ack, error) {
	raw, ok := body.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("client: encode body: %w", err)
		}
	}
	if clientID == "" {
		clientID = NewClientID()
	}
	req := protocol.Request{Type: protocol.TypeSend, Conv: conv, ClientID: clientID, Body: raw,
		ReplyTo: opts.ReplyTo, Thread: opts.Thread, Mentions: opts.Mentions}
	ack := new(protocol.Ack)
	if err := c.call(ctx, req, protocol.TypeAck, ack); err != nil {
		return nil, err
	}
	return ack, nil
}

// Reply sends a plain message quoting replyTo.
func (c *Client) Reply(ctx context.Context, conv string, replyTo uint64, body any) (*protocol.Ack, error) {
	return c.SendWith(ctx, conv, "", body, SendOptions{ReplyTo: replyTo})
}

// SendInThread sends a plain message into the thread under root.
func (c *Client) SendInThread(ctx context.Context, conv string, root uint64, body any) (*protocol.Ack, error) {
	return c.SendWith(ctx, conv, "", body, SendOptions{Thread: root})
}

// ThreadAfter returns up to limit replies of the thread under root with
// seq > after, ascending; limit ≤ 0 uses the server default.
func (c *Client) ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) (*protocol.MessagesFrame, error) {
	return c.messages(ctx, protocol.Request{Type: protocol.TypeThread, Conv: conv, Thread: root, Limit: limit,
		After: strconv.AppendUint(nil, after, 10)})
}

// ThreadBefore returns the newest limit replies of the thread under root
// with seq < before, ascending; before 0 means from the newest.
func (c *Client) ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) (*protocol.MessagesFrame, error) {
	req := protocol.Request{Type: protocol.TypeThread, Conv: conv, Thread: root, Limit: limit}
	if before > 0 {
		b := int64(before)
		req.Before = &b
	}
	return c.messages(ctx, req)
}

// ApplyThreadReply updates root, a message the caller holds, for m, a
// message pushed live: when m is a new reply in root's thread, root's
// ThreadCount goes up by one and ThreadLastSeq becomes m's seq, the
// counts a page would now show. It reports whether root changed. A reply
// at or below ThreadLastSeq is counted already (a page read after it).
func ApplyThreadReply(root, m *protocol.Message) bool {
	if m.Thread == 0 || m.Thread != root.Seq || m.Conv != root.Conv || m.Kind != protocol.KindMessage || m.Seq <= root.ThreadLastSeq {
		return false
	}
	root.ThreadCount++
	root.ThreadLastSeq = m.Seq
	return true
}
