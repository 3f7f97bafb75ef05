package gateway

import (
	"context"
	"errors"

	"github.com/natter-chat/natter/protocol"
)

// replyFields fills what a send with reply_to or thread takes from the
// messages it names, once the sender is known to be a member:
//   - reply_to must be a plain message of the conversation (not_found
//     otherwise); the gateway copies its sender, kind and snippet into the
//     quote; when it was deleted, the quote says so (deleted, and an
//     empty snippet);
//   - thread must be a plain message of the conversation that is not
//     itself a thread reply (threads are one level deep): not_found for
//     none, bad_request for a thread reply.
func (sess *session) replyFields(ctx context.Context, conv string, env *protocol.Envelope) *protocol.Error {
	if env.Thread != 0 {
		root, perr := sess.plainMessage(ctx, conv, env.Thread, "thread")
		if perr != nil {
			return perr
		}
		if root.Thread != 0 {
			return protocol.Errorf(protocol.CodeBadRequest, "thread %d is a reply in thread %d: threads are one level deep", env.Thread, root.Thread)
		}
	}
	if env.ReplyTo != 0 {
		quoted, perr := sess.plainMessage(ctx, conv, env.ReplyTo, "reply_to")
		if perr != nil {
			return perr
		}
		env.Quote = quoteOf(quoted)
		// A reply shows a snippet of what it quotes: it disappears no
		// later than that (ttl.go); the send lowers it to its own.
		env.ExpiresAt = quoted.ExpiresAt
	}
	return nil
}

// quoteOf is what a reply shows of m.
func quoteOf(m *protocol.Message) *protocol.Quote {
	if m.Deleted {
		return &protocol.Quote{Seq: m.Seq, Sender: m.Sender, Kind: m.Kind, Deleted: true}
	}
	return &protocol.Quote{Seq: m.Seq, Sender: m.Sender, Kind: m.Kind, Snippet: protocol.Snippet(m.Body, m.Kind)}
}

// plainMessage returns the message seq of conv, as it reads now (edits
// and a deletion applied), if it is a plain message; otherwise not_found
// naming field.
func (sess *session) plainMessage(ctx context.Context, conv string, seq uint64, field string) (*protocol.Message, *protocol.Error) {
	m, err := sess.srv.msgs.Get(ctx, conv, seq)
	if errors.Is(err, ErrNotFound) || (err == nil && m.Kind != protocol.KindMessage) {
		return nil, protocol.Errorf(protocol.CodeNotFound, "%s %d is not a message of this conversation", field, seq)
	}
	if err != nil {
		return nil, sess.fail(err)
	}
	return m, nil
}

// thread pages the replies of the thread under req.Thread: forwards from
// after when after is given, else backwards from before (none: the
// newest), as sync and history page a conversation. The reply is a
// messages frame with thread set. The root must be a plain message of
// the conversation that is not itself a thread reply.
func (sess *session) thread(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if req.Thread == 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "thread must be the seq of the thread's root")
	}
	after, ok := parseSeq(req.After)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "after must be a seq (a non-negative integer)")
	}
	forward := len(req.After) > 0 && string(req.After) != "null"
	if forward && req.Before != nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "give after or before, not both")
	}
	var before uint64
	if req.Before != nil {
		if *req.Before < 0 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "before must be a seq")
		}
		before = uint64(*req.Before)
	}
	if err := sess.checkConv(ctx, req.Conv); err != nil {
		return nil, err
	}
	root, perr := sess.plainMessage(ctx, req.Conv, req.Thread, "thread")
	if perr != nil {
		return nil, perr
	}
	if root.Thread != 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "thread %d is a reply in thread %d, not a root", req.Thread, root.Thread)
	}
	// The frame carries the root as it reads now (edits, a deletion and
	// its thread counts applied), so a client that opens a thread from a
	// link or a notification needs no second read.
	r := *root
	r.Type = "" // an item, as in pages
	root = &r
	sess.srv.withFiles(ctx, root)
	msgs := sess.srv.msgs
	if forward {
		return sess.messagesPageRoot(ctx, req, root, after, false, func(ctx context.Context, conv string, from uint64, limit int) ([]*protocol.Message, bool, error) {
			return msgs.ThreadAfter(ctx, conv, req.Thread, from, limit)
		})
	}
	return sess.messagesPageRoot(ctx, req, root, before, true, func(ctx context.Context, conv string, from uint64, limit int) ([]*protocol.Message, bool, error) {
		return msgs.ThreadBefore(ctx, conv, req.Thread, from, limit)
	})
}
