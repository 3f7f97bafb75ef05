package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// The send path's own encodings (issue 19): the ack frame and the reading
// of a PubAck without encoding/json's reflection, each byte for byte what
// encoding/json makes of it, which stays the path for anything unusual.

// ackFrameSize is room for the usual ack frame.
const ackFrameSize = 192

// appendAck appends the ack frame of a send to dst exactly as
// json.Marshal encodes a, which it does itself when a has files or a
// string json.Marshal would escape.
func appendAck(dst []byte, a *protocol.Ack) []byte {
	if len(a.Files) > 0 || !plainJSON(a.Type) || !plainJSON(a.ID) || !plainJSON(a.Conv) ||
		!plainJSON(a.TS) || !plainJSON(a.ExpiresAt) {
		data, err := json.Marshal(a)
		if err != nil {
			// An Ack has nothing json.Marshal refuses.
			panic(err)
		}
		return append(dst, data...)
	}
	dst = append(dst, `{"type":"`...)
	dst = append(dst, a.Type...)
	if a.ID != "" {
		dst = append(dst, `","id":"`...)
		dst = append(dst, a.ID...)
	}
	dst = append(dst, `","conv":"`...)
	dst = append(dst, a.Conv...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, a.Seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = append(dst, a.TS...)
	dst = append(dst, '"')
	if a.Duplicate {
		dst = append(dst, `,"duplicate":true`...)
	}
	if a.ExpiresAt != "" {
		dst = append(dst, `,"expires_at":"`...)
		dst = append(dst, a.ExpiresAt...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// plainJSON reports whether json.Marshal writes s between its quotes as
// it is: printable ASCII but for the quote, the backslash and the HTML
// characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// pubAckResponse is JetStream's answer to a publish as
// jetstream.PublishMsg decodes it.
type pubAckResponse struct {
	Type  string              `json:"type"`
	Error *jetstream.APIError `json:"error,omitempty"`
	*jetstream.PubAck
}

// decodePubAck reads JetStream's answer to a publish to stream as
// jetstream.PublishMsg does: the PubAck, the API error in it (wrapped the
// same way), or jetstream.ErrInvalidJSAck. The usual PubAck is read
// without encoding/json, its stream name not copied when it is stream.
func decodePubAck(data []byte, stream string) (*jetstream.PubAck, error) {
	ack := new(jetstream.PubAck)
	if protocol.ScanFlat(data, func(key []byte, kind byte, val []byte) bool {
		switch {
		case kind == '"' && string(key) == "stream":
			if string(val) == stream {
				ack.Stream = stream
			} else {
				ack.Stream = string(val)
			}
		case kind == '"' && string(key) == "domain":
			ack.Domain = string(val)
		case kind == '0' && string(key) == "seq":
			// ScanFlat checked that it fits.
			ack.Sequence, _ = strconv.ParseUint(string(val), 10, 64)
		case (kind == 't' || kind == 'f') && string(key) == "duplicate":
			ack.Duplicate = kind == 't'
		default:
			return false
		}
		return true
	}) && ack.Stream != "" {
		return ack, nil
	}
	var resp pubAckResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("nats: %w", resp.Error)
	}
	if resp.PubAck == nil || resp.PubAck.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return resp.PubAck, nil
}

// publishAttempt is one attempt of a publish to stream, as
// jetstream.PublishMsg with WithExpectStream(stream) makes it, but for
// its own retries of no responders (publish retries them all): within
// timeout when it is positive, else within ctx.
func (s *Server) publishAttempt(ctx context.Context, timeout time.Duration, msg *nats.Msg, stream string) (*jetstream.PubAck, error) {
	setHeader(msg.Header, jetstream.ExpectedStreamHeader, stream)
	var resp *nats.Msg
	var err error
	if timeout > 0 {
		resp, err = s.js.Conn().RequestMsg(msg, timeout)
	} else {
		resp, err = s.js.Conn().RequestMsgWithContext(ctx, msg)
	}
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, jetstream.ErrNoStreamResponse
		}
		return nil, err
	}
	return decodePubAck(resp.Data, stream)
}

// setHeader sets key to val in h, in place when key has one value
// already: a header set again on a retry allocates nothing.
func setHeader(h nats.Header, key, val string) {
	if v := h[key]; len(v) == 1 {
		v[0] = val
		return
	}
	h[key] = []string{val}
}

// sendHeaderValues is how many header values a send's publish usually
// carries: its id, its origin, the membership precondition's two and the
// stream expected.
const sendHeaderValues = 5

// newSendHeader returns the headers of a send's publish, their values in
// one array: the id, the origin, the stream expected (set by each attempt)
// and, when v was checked, the membership precondition (memberview.go).
func newSendHeader(msgID, origin string, v sendView) nats.Header {
	vals := make([]string, 0, sendHeaderValues)
	h := make(nats.Header, sendHeaderValues+1)
	add := func(key, val string) {
		vals = append(vals, val)
		n := len(vals)
		h[key] = vals[n-1 : n : n]
	}
	add(schema.HeaderMsgID, msgID)
	add(schema.HeaderOrigin, origin)
	// Its value is the stream, which each attempt sets (publishAttempt).
	add(jetstream.ExpectedStreamHeader, "")
	if v.checked {
		add(schema.HeaderExpectedLastSubjectSeq, strconv.FormatUint(v.seq, 10))
		add(schema.HeaderExpectedLastSubjectSeqSubject, v.subject)
	}
	return h
}
