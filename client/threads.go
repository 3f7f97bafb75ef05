package client

import (
	"context"
	"strconv"

	"github.com/natter-chat/natter/protocol"
)

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
