package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// ErrBadEnvelope is returned for a stored message that is not a valid
// envelope. Internal services may publish anything to chat.msg.*, so readers
// skip such messages instead of failing.
var ErrBadEnvelope = errors.New("bad envelope")

// DecodeEnvelope parses and checks a stored message body.
func DecodeEnvelope(data []byte) (*Envelope, error) {
	var e Envelope
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrBadEnvelope)
	}
	if !decodeEnvelopeFast(data, &e) {
		e = Envelope{}
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadEnvelope, err)
		}
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	return &e, nil
}

// Check validates the fields every stored message must have.
func (e *Envelope) Check() error {
	switch {
	case e.Sender == "" || len(e.Sender) > MaxIDLen:
		return fmt.Errorf("%w: sender must be 1 to %d bytes", ErrBadEnvelope, MaxIDLen)
	case !ValidID(e.Sender):
		return fmt.Errorf("%w: sender %q is not a valid id", ErrBadEnvelope, e.Sender)
	case !ValidClientID(e.ClientID):
		return fmt.Errorf("%w: client_id must be 1 to %d printable ASCII characters", ErrBadEnvelope, MaxClientIDLen)
	case !IsObject(e.Body):
		return fmt.Errorf("%w: body must be a JSON object", ErrBadEnvelope)
	case len(e.Body) > MaxBodyBytes:
		return fmt.Errorf("%w: body over %d bytes", ErrBadEnvelope, MaxBodyBytes)
	}
	switch e.Kind {
	case KindMessage:
		if e.Ref != 0 {
			return fmt.Errorf("%w: ref only goes with edit, delete or reaction", ErrBadEnvelope)
		}
	case KindEdit, KindDelete, KindReaction:
		if e.Ref == 0 {
			return fmt.Errorf("%w: %s needs ref", ErrBadEnvelope, e.Kind)
		}
	case KindEvent:
		if e.Ref != 0 {
			return fmt.Errorf("%w: an event has no ref", ErrBadEnvelope)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrBadEnvelope, e.Kind)
	}
	if e.Kind != KindMessage && (e.ReplyTo != 0 || e.Quote != nil || e.Thread != 0 || len(e.Mentions) > 0) {
		return fmt.Errorf("%w: reply_to, quote, thread and mentions go only with a message", ErrBadEnvelope)
	}
	if e.Quote != nil && e.Quote.Seq != e.ReplyTo {
		return fmt.Errorf("%w: quote.seq must be reply_to", ErrBadEnvelope)
	}
	if len(e.Mentions) > MaxMentions {
		return fmt.Errorf("%w: over %d mentions", ErrBadEnvelope, MaxMentions)
	}
	for _, m := range e.Mentions {
		if m != MentionAll && !ValidID(m) {
			return fmt.Errorf("%w: mention %q is not a user id", ErrBadEnvelope, m)
		}
	}
	return nil
}

// MaxMentions bounds the mentions of one message.
const MaxMentions = 50

// IsObject reports whether raw is a JSON object (after leading space).
func IsObject(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) >= 2 && raw[0] == '{'
}

// Message returns the message as clients see it; ts is used when the
// envelope has none.
func (e *Envelope) Message(conv string, seq uint64, ts string) *Message {
	if e.TS != "" {
		ts = e.TS
	}
	return &Message{Conv: conv, Seq: seq, Sender: e.Sender, ClientID: e.ClientID, TS: ts, Kind: e.Kind, Ref: e.Ref,
		ReplyTo: e.ReplyTo, Quote: e.Quote, Thread: e.Thread, Mentions: e.Mentions, ExpiresAt: e.ExpiresAt, Body: e.Body}
}

// AppendMessageFrame appends the push frame of a message to dst, encoded
// once by the fan-out and written as is to every socket. The body is
// copied verbatim: it was checked to be a JSON object.
func AppendMessageFrame(dst []byte, m *Message) []byte {
	dst = append(dst, `{"type":"message","conv":`...)
	dst = AppendString(dst, m.Conv)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, m.Seq, 10)
	dst = append(dst, `,"sender":`...)
	dst = AppendString(dst, m.Sender)
	dst = append(dst, `,"client_id":`...)
	dst = AppendString(dst, m.ClientID)
	dst = append(dst, `,"ts":`...)
	dst = AppendString(dst, m.TS)
	if m.Kind != "" {
		dst = append(dst, `,"kind":`...)
		dst = AppendString(dst, m.Kind)
		dst = append(dst, `,"ref":`...)
		dst = strconv.AppendUint(dst, m.Ref, 10)
	}
	dst = appendReplyFields(dst, m)
	dst = AppendExpiresAt(dst, m.ExpiresAt)
	dst = append(dst, `,"prev":`...)
	dst = strconv.AppendUint(dst, m.Prev, 10)
	dst = append(dst, `,"body":`...)
	dst = append(dst, m.Body...)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. s must be valid UTF-8.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
