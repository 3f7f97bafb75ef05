package gateway

import (
	"context"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// send stores a message in the CHAT stream and acknowledges it with its
// seq once JetStream has it. The fan-out delivers it to the members.
func (sess *session) send(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	if !protocol.ValidClientID(req.ClientID) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "client_id is required: 1 to %d printable ASCII characters", protocol.MaxClientIDLen)
	}
	if !protocol.IsObject(req.Body) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "body must be a JSON object")
	}
	if len(req.Body) > protocol.MaxBodyBytes {
		return nil, protocol.Errorf(protocol.CodeTooLarge, "body is %d bytes; at most %d", len(req.Body), protocol.MaxBodyBytes)
	}
	env := protocol.Envelope{Sender: sess.user, ClientID: req.ClientID, Kind: req.Kind, Body: req.Body}
	if req.Ref < 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "ref must be a seq")
	}
	env.Ref = uint64(req.Ref)
	if err := env.Check(); err != nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "%s", err.Error())
	}
	if err := sess.checkConv(ctx, req.Conv); err != nil {
		return nil, err
	}
	if env.Kind != protocol.KindMessage {
		target, err := sess.srv.msgs.Get(ctx, req.Conv, env.Ref)
		if errors.Is(err, ErrNotFound) || (err == nil && target.Kind != protocol.KindMessage) {
			return nil, protocol.Errorf(protocol.CodeNotFound, "ref %d is not a message of this conversation", env.Ref)
		}
		if err != nil {
			return nil, sess.fail(err)
		}
		if env.Kind != protocol.KindReaction && target.Sender != sess.user {
			return nil, protocol.Errorf(protocol.CodeForbidden, "only the original sender may %s a message", env.Kind)
		}
	}
	now := sess.srv.cfg.Now()
	env.TS = protocol.FormatTime(now)
	data := appendEnvelope(make([]byte, 0, len(req.Body)+160), &env)
	msg := &nats.Msg{
		Subject: schema.Msg(req.Conv),
		Header: nats.Header{
			// The same (sender, client_id) in a conversation is one message.
			schema.HeaderMsgID:  []string{sess.user + ":" + req.Conv + ":" + req.ClientID},
			schema.HeaderOrigin: []string{sess.id},
		},
		Data: data,
	}
	ack, err := sess.srv.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(schema.StreamChat))
	if err != nil {
		inc(sess.srv.metrics.PublishErrors)
		return nil, sess.fail(err)
	}
	ts := env.TS
	if ack.Duplicate {
		// A retry: answer with the original message's seq and time.
		orig, err := sess.srv.msgs.Get(ctx, req.Conv, ack.Sequence)
		if err != nil {
			return nil, sess.fail(err)
		}
		ts = orig.TS
	}
	// The ack goes out first; the sender's read marker moves before this
	// connection's next request is handled.
	sess.reply(&protocol.Ack{Type: protocol.TypeAck, ID: req.ID, Conv: req.Conv, Seq: ack.Sequence, TS: ts, Duplicate: ack.Duplicate})
	if o := sess.srv.metrics.SendAck; o != nil {
		o.Observe(sess.srv.cfg.Now().Sub(now).Seconds())
	}
	if _, err := sess.srv.markers.MarkRead(ctx, req.Conv, sess.user, ack.Sequence); err != nil {
		sess.srv.cfg.Logger.Warn("sender's read marker not moved", "user", sess.user, "conv", req.Conv, "err", err)
	}
	return nil, nil
}

// appendEnvelope encodes the stored form of a message without re-encoding
// the body.
func appendEnvelope(dst []byte, e *protocol.Envelope) []byte {
	dst = append(dst, `{"sender":`...)
	dst = protocol.AppendString(dst, e.Sender)
	dst = append(dst, `,"client_id":`...)
	dst = protocol.AppendString(dst, e.ClientID)
	dst = append(dst, `,"ts":`...)
	dst = protocol.AppendString(dst, e.TS)
	if e.Kind != "" {
		dst = append(dst, `,"kind":`...)
		dst = protocol.AppendString(dst, e.Kind)
		dst = append(dst, `,"ref":`...)
		dst = strconv.AppendUint(dst, e.Ref, 10)
	}
	dst = append(dst, `,"body":`...)
	dst = append(dst, e.Body...)
	return append(dst, '}')
}

// sync pages forwards from a seq: what a reconnecting client missed.
func (sess *session) sync(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	after, ok := parseSeq(req.After)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "after must be a seq (a non-negative integer)")
	}
	if err := sess.checkConv(ctx, req.Conv); err != nil {
		return nil, err
	}
	return sess.messagesPage(ctx, req, after, false, sess.srv.msgs.After)
}

// history pages backwards from a seq.
func (sess *session) history(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	var before uint64
	if req.Before != nil {
		if *req.Before < 0 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "before must be a seq")
		}
		// 0 means no bound, like a missing before: no seq is below 1.
		before = uint64(*req.Before)
	}
	if err := sess.checkConv(ctx, req.Conv); err != nil {
		return nil, err
	}
	return sess.messagesPage(ctx, req, before, true, sess.srv.msgs.Before)
}
