package gateway

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Idempotent sends at a bounded memory cost (issue 19).
//
// The promise: a send repeated with the same client_id within the de-dup
// window (10 minutes by default) is answered with the original seq and
// stored nothing new. JetStream keeps every Nats-Msg-Id of its own
// Duplicates window in memory, about 160 B per message on every replica,
// so the CHAT stream's window is only the fast part of the promise
// (schema.Config.FastDuplicates, 2 minutes): any repeat inside it, marked
// or not, is caught by the publish itself at no cost. Past it, the client
// marks its resends ("resend": true, docs/protocol.md), and only those are
// looked up here, in the CHAT stream, which holds every message of the
// window (its hot window is longer, and nothing leaves it before the hot
// window has passed). A first send never is. The lookup reads the stream
// (replicated, the same for every gateway, kept across gateway restarts
// and a node's failover) and keeps nothing in memory.

// sendMsgID is the Nats-Msg-Id of a client's send: the same (sender,
// client_id) in a conversation is one message.
func sendMsgID(user, conv, clientID string) string {
	return user + ":" + conv + ":" + clientID
}

// answerResend answers a send marked as a resend whose original the CHAT
// stream holds from within the de-dup window, as a publish inside
// JetStream's own window would: the original seq and ts, duplicate. found
// is false when there is none (then the send is published as usual, and
// JetStream still catches a repeat of an original in flight).
func (sess *session) answerResend(ctx context.Context, req *protocol.Request, msgID string) (found bool, perr *protocol.Error) {
	seq, ts, found, err := sess.srv.findSent(ctx, req.Conv, msgID, req.Resend)
	if err != nil {
		return false, sess.fail(err)
	}
	if !found {
		return false, nil
	}
	sess.push(appendAck(make([]byte, 0, ackFrameSize), &protocol.Ack{Type: protocol.TypeAck, ID: req.ID, Conv: req.Conv, Seq: seq, TS: ts, Duplicate: true}))
	sess.srv.own.owe(sess.user, req.Conv, seq)
	return true, nil
}

// resendSkew widens the lookup for clocks of the gateway and the NATS
// servers that disagree: the window is counted on the stream's times.
const resendSkew = 30 * time.Second

// findSent looks for the message of conv whose Nats-Msg-Id is msgID among
// those the CHAT stream stored within the de-dup window (read from the
// stream's metadata, schema.DedupeWindowOf), when resend (a marked
// resend), and in a retired stream that holds conv (retired.go). When the
// stream's own Duplicates covers the whole window there is nothing to
// look up in it.
func (s *Server) findSent(ctx context.Context, conv, msgID string, resend bool) (seq uint64, ts string, found bool, err error) {
	if seq, ts, found, err = s.findRetired(ctx, conv, msgID); err != nil || found || !resend {
		return seq, ts, found, err
	}
	st, err := s.chatStream(ctx, conv)
	if err != nil {
		return 0, "", false, err
	}
	sc := st.CachedInfo().Config
	window := schema.DedupeWindowOf(sc)
	if window <= sc.Duplicates {
		return 0, "", false, nil
	}
	inc(s.metrics.ResendLookups)
	since := s.cfg.Now().Add(-window - resendSkew)
	// The stored subjects of conv: its partition's, and on a stream
	// upgraded to partitions the old form too (schema.Layout).
	for _, subj := range schema.LayoutOf(sc).StoredMsgs(conv) {
		if seq, ts, found, err = s.findSentIn(ctx, st.CachedInfo().Config.Name, conv, subj, msgID, since); err != nil || found {
			return seq, ts, found, err
		}
	}
	return 0, "", false, nil
}

// findSentIn is findSent over one stored subject of conv.
func (s *Server) findSentIn(ctx context.Context, stream, conv, subj, msgID string, since time.Time) (seq uint64, ts string, found bool, err error) {
	var from uint64 // 0: from since
	for {
		n, last, err := s.scanSent(ctx, stream, conv, subj, since, from, func(m *nats.Msg, sq uint64) bool {
			if m.Header.Get(schema.HeaderMsgID) != msgID {
				return true
			}
			seq, found = sq, true
			if env, derr := protocol.DecodeEnvelope(m.Data); derr == nil && env.TS != "" {
				ts = env.TS
			} else if t, terr := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer)); terr == nil {
				ts = protocol.FormatTime(t)
			}
			return false
		})
		if err != nil || found || n < resendBatch {
			return seq, ts, found, err
		}
		from = last + 1
	}
}

// resendBatch is how many messages one batch direct get of findSent asks
// for.
const resendBatch = 256

// scanSent is one batch direct get of conv's messages, from seq from, or
// from time since when from is 0; each is handed to fn until it returns
// false. It returns how many the server sent and the last seq.
func (s *Server) scanSent(ctx context.Context, stream, conv, subj string, since time.Time, from uint64, fn func(*nats.Msg, uint64) bool) (int, uint64, error) {
	nc := s.js.Conn()
	ch := make(chan *nats.Msg, resendBatch+2) // the batch, end of batch, a status
	inbox := nc.NewRespInbox()
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return 0, 0, fmt.Errorf("resend lookup in %s: %w", conv, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	req := []byte(`{"batch":`)
	req = strconv.AppendInt(req, resendBatch, 10)
	if from == 0 {
		req = append(req, `,"start_time":`...)
		req = protocol.AppendString(req, since.UTC().Format(time.RFC3339Nano))
	} else {
		req = append(req, `,"seq":`...)
		req = strconv.AppendUint(req, from, 10)
	}
	req = append(req, `,"next_by_subj":`...)
	req = protocol.AppendString(req, subj)
	req = append(req, '}')
	if err := nc.PublishRequest(schema.DirectGetAPI(stream), inbox, req); err != nil {
		return 0, 0, fmt.Errorf("resend lookup in %s: %w", conv, err)
	}
	n, last, going := 0, uint64(0), true
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return n, last, fmt.Errorf("resend lookup in %s: %w", conv, ctx.Err())
		}
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
			switch status {
			case "204", "404": // end of batch, no message
				return n, last, nil
			case "503":
				return n, last, fmt.Errorf("resend lookup in %s: %w", conv, nats.ErrNoResponders)
			}
			return n, last, fmt.Errorf("resend lookup in %s: status %s %s", conv, status, m.Header.Get("Description"))
		}
		sq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return n, last, fmt.Errorf("resend lookup in %s: a reply without a seq: %w", conv, err)
		}
		n, last = n+1, sq
		if going {
			going = fn(m, sq)
		}
	}
}
