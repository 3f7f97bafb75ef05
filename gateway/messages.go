package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// send stores a message in the CHAT stream and acknowledges it with its
// seq once JetStream has it. The fan-out delivers it to the members.
func (sess *session) send(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if sess.srv.tracer != nil {
		return sess.sendTraced(ctx, req)
	}
	return sess.sendMessage(ctx, req)
}

// sendMessage is send, traced or not.
func (sess *session) sendMessage(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
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
	if env.Kind == protocol.KindEvent {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "events are written by the server")
	}
	env.ReplyTo, env.Thread = req.ReplyTo, req.Thread
	if err := env.Check(); err != nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "%s", err.Error())
	}
	view, perr := sess.senderView(ctx, req.Conv)
	if perr != nil {
		return nil, perr
	}
	var target *protocol.Message
	if env.Mentions, perr = sess.checkMentions(ctx, req); perr != nil {
		return nil, perr
	}
	if perr := sess.replyFields(ctx, req.Conv, &env); perr != nil {
		return nil, perr
	}
	if env.Kind != protocol.KindMessage {
		var err error
		target, err = sess.srv.msgs.Get(ctx, req.Conv, env.Ref)
		if errors.Is(err, ErrNotFound) || (err == nil && target.Kind != protocol.KindMessage) {
			return nil, protocol.Errorf(protocol.CodeNotFound, "ref %d is not a message of this conversation", env.Ref)
		}
		if err != nil {
			return nil, sess.fail(err)
		}
		switch {
		case env.Kind == protocol.KindReaction || target.Sender == sess.user:
		case env.Kind == protocol.KindDelete:
			// The owner or an admin deletes anyone's message (group.go).
			if perr := sess.checkModerator(ctx, req.Conv); perr != nil {
				return nil, perr
			}
		default:
			return nil, protocol.Errorf(protocol.CodeForbidden, "only the original sender may %s a message", env.Kind)
		}
	}
	now := sess.srv.cfg.Now()
	env.TS = protocol.FormatTime(now)
	exp := msgExpiry{now: now, limit: env.ExpiresAt}
	if target != nil {
		// An edit, delete or reaction lives exactly as long as its
		// target: the conversation's ttl does not apply to it.
		exp.limit, exp.events = target.ExpiresAt, true
	}
	env.ExpiresAt = exp.of(view.ttl)
	files, perr := sess.attachmentsOf(ctx, req, env.Kind, env.ExpiresAt)
	if perr != nil {
		return nil, perr
	}
	msgID := sendMsgID(sess.user, req.Conv, req.ClientID)
	retired, err := sess.srv.retiredWithin(ctx, now)
	if err != nil {
		return nil, sess.fail(err)
	}
	if req.Resend || retired {
		// Past JetStream's own window only the stream knows (resend.go);
		// after a re-partition, the retired streams (retired.go).
		if found, perr := sess.answerResend(ctx, req, msgID); found || perr != nil {
			return nil, perr
		}
	}
	data := appendEnvelope(make([]byte, 0, len(req.Body)+160), &env)
	msg := &nats.Msg{Subject: schema.Msg(req.Conv), Header: newSendHeader(msgID, sess.id, view), Data: data}
	exp.header(msg, env.ExpiresAt)
	pctx, pub := ctx, trace.Span(nil)
	if sess.srv.tracer != nil {
		// The stored message carries the trace context: bytes per
		// message, so only when tracing is on.
		pctx, pub = sess.startPublish(ctx, msg)
	}
	ack, perr := sess.publishAsMember(pctx, msg, req.Conv, view, func(ttl int64) *protocol.Error {
		exp.stamp(msg, &env, ttl)
		if len(files) == 0 {
			return nil
		}
		// The files live as the message does: bind them again.
		var perr *protocol.Error
		files, perr = sess.attachmentsOf(ctx, req, env.Kind, env.ExpiresAt)
		return perr
	})
	if pub != nil {
		endPublish(pub, ack, perr)
	}
	if perr != nil {
		return nil, perr
	}
	if ctx.Err() != nil {
		// The publish retried past the request's deadline (a leader
		// change): what follows gets a deadline of its own.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), sess.srv.cfg.RequestTimeout)
		defer cancel()
	}
	ts, dup, expiresAt := env.TS, ack.Duplicate, env.ExpiresAt
	if dup {
		// A retry: answer with the original message's seq and time.
		orig, origExpiry, err := sess.original(ctx, req.Conv, ack.Sequence)
		if err != nil {
			return nil, sess.fail(err)
		}
		// An attempt of this very request that stored the message but
		// lost its ack is not a duplicate to the client.
		ts, dup, expiresAt = orig, orig != env.TS, origExpiry
	}
	if env.Kind == protocol.KindDelete && !dup {
		// Before the ack: once told, the client may rely on it.
		sess.deleteAttachments(ctx, req.Conv, target)
	}
	sess.push(appendAck(make([]byte, 0, ackFrameSize), &protocol.Ack{Type: protocol.TypeAck, ID: req.ID, Conv: req.Conv, Seq: ack.Sequence, TS: ts, Duplicate: dup, Files: files, ExpiresAt: expiresAt}))
	if o := sess.srv.metrics.SendAck; o != nil {
		o.Observe(sess.srv.cfg.Now().Sub(now).Seconds())
	}
	// The sender has read what it sent: its marker moves, written later
	// with the sender's other sends (marks.go).
	sess.srv.own.owe(sess.user, req.Conv, ack.Sequence)
	return nil, nil
}

// publish stores msg in its conversation's message stream. While the stream has no leader (a
// node died, an election is under way) it tries again with the same
// Nats-Msg-Id, which makes the attempts one message, for up to
// Config.PublishRetry; then the error is errUnavailable. Any other error
// ends it at once.
func (sess *session) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	cfg := &sess.srv.cfg
	// The retry has its own budget: a leader election may outlast the
	// request's timeout, and the client would only send again. The
	// usual publish, answered at once, needs no context for it: its
	// one attempt has a timeout of its own.
	start := time.Now()
	var (
		budget context.Context
		cancel context.CancelFunc = func() {}
	)
	defer func() { cancel() }()
	retryCtx := func() context.Context {
		if budget == nil {
			budget, cancel = context.WithDeadline(context.WithoutCancel(ctx), start.Add(cfg.PublishRetry))
		}
		return budget
	}
	var l schema.Layout
	if p := sess.srv.layout.Load(); p != nil {
		l = *p
	} else {
		var err error
		if l, err = sess.srv.chatLayout(retryCtx()); err != nil {
			return nil, err
		}
	}
	// The stream the account's mapping stores msg in (schema.Mappings).
	stream := l.StreamOf(schema.ConvFromSubject(msg.Subject))
	ack, err := sess.srv.publishAttempt(context.Background(), min(publishAttemptTimeout, cfg.PublishRetry), msg, stream)
	wait := publishRetryWait
	for {
		if err == nil {
			return ack, nil
		}
		if !retryable(err) {
			return nil, err
		}
		inc(sess.srv.metrics.PublishRetries)
		select {
		case <-retryCtx().Done():
			return nil, fmt.Errorf("%w: publish to %s for %s: %w", errUnavailable, stream, cfg.PublishRetry, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, publishRetryMaxWait)
		actx, acancel := context.WithTimeout(retryCtx(), publishAttemptTimeout)
		ack, err = sess.srv.publishAttempt(actx, 0, msg, stream)
		acancel()
	}
}

const (
	// publishAttemptTimeout bounds one publish attempt: an attempt that
	// went to a node dying under it is abandoned and tried again.
	publishAttemptTimeout = 2 * time.Second
	publishRetryWait      = 50 * time.Millisecond
	publishRetryMaxWait   = 500 * time.Millisecond
)

// retryable reports whether a publish failed because the CHAT stream is
// between leaders: nobody answered, the answer did not come in time, or
// JetStream said it is temporarily unavailable. A refusal of the message
// itself (too large, wrong stream) is not.
func retryable(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jsErrClusterNotAvail, jsErrStreamOffline, jsErrClusterNoPeers:
			return true
		}
		// 503 is what JetStream answers while it cannot serve: no leader,
		// no quorum.
		return apiErr.Code == 503 && apiErr.ErrorCode != jetstream.JSErrCodeJetStreamNotEnabled &&
			apiErr.ErrorCode != jetstream.JSErrCodeJetStreamNotEnabledForAccount
	}
	return false
}

// JetStream error codes of a stream between leaders, which nats.go does
// not name (nats-server's JSClusterNotAvailErr, JSStreamOfflineErr,
// JSClusterNoPeersErr).
const (
	jsErrClusterNotAvail jetstream.ErrorCode = 10008
	jsErrStreamOffline   jetstream.ErrorCode = 10118
	jsErrClusterNoPeers  jetstream.ErrorCode = 10005
)

// original returns the time and expiry of the message stored at seq in
// its message stream, read from the stream itself (a direct get, answered
// by any replica) so that an outage of the history API cannot turn a
// retried send into an error; only a message the stream no longer holds
// is read from Messages. A message that disappeared (ttl.go) is
// not_found: a retry after its expiry cannot be answered with it.
func (sess *session) original(ctx context.Context, conv string, seq uint64) (string, string, error) {
	raw, err := sess.srv.chatMsg(ctx, conv, seq)
	if err == nil {
		env, derr := protocol.DecodeEnvelope(raw.Data)
		if derr != nil {
			return "", "", fmt.Errorf("original of a duplicate at %d: %w", seq, derr)
		}
		if env.Expired(sess.srv.cfg.Now()) {
			return "", "", ErrNotFound
		}
		if env.TS != "" {
			return env.TS, env.ExpiresAt, nil
		}
		return protocol.FormatTime(raw.Time), env.ExpiresAt, nil
	}
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", "", fmt.Errorf("original of a duplicate at %d: %w", seq, err)
	}
	m, err := sess.srv.msgs.Get(ctx, conv, seq)
	if err != nil {
		return "", "", err
	}
	return m.TS, m.ExpiresAt, nil
}

// chatMsg reads the message at seq from the stream of conv.
func (s *Server) chatMsg(ctx context.Context, conv string, seq uint64) (*jetstream.RawStreamMsg, error) {
	st, err := s.chatStream(ctx, conv)
	if err != nil {
		return nil, err
	}
	return st.GetMsg(ctx, seq)
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
	dst = protocol.AppendReplyFields(dst, e.ReplyTo, e.Quote, e.Thread, e.Mentions)
	dst = protocol.AppendExpiresAt(dst, e.ExpiresAt)
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
