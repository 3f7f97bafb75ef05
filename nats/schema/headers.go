package schema

import (
	"strconv"

	"github.com/nats-io/nats.go"
)

// NATS headers Natter sets on messages.
const (
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderOrigin names the gateway session that sent a message, so the
	// gateway can give that one connection the ack instead of the push.
	HeaderOrigin = "Natter-Origin"
	// HeaderExpectedLastSubjectSeq and HeaderExpectedLastSubjectSeqSubject
	// make JetStream store a message only if the last message stored on
	// the named subject has that seq (0: none): a send carries the seq of
	// the membership event its sender's membership was read at.
	HeaderExpectedLastSubjectSeq        = "Nats-Expected-Last-Subject-Sequence"
	HeaderExpectedLastSubjectSeqSubject = "Nats-Expected-Last-Subject-Sequence-Subject"
	// HeaderReason says why a message was dead-lettered.
	HeaderReason = "Natter-Reason"
	// HeaderSubject and HeaderSeq locate a dead letter's original.
	HeaderSubject = "Natter-Subject"
	HeaderSeq     = "Natter-Seq"
	// HeaderTTL is JetStream's per-message TTL (whole seconds): a
	// disappearing message carries it, and the CHAT stream, which
	// allows it (AllowMsgTTL), removes the message then.
	HeaderTTL = "Nats-TTL"
)

// DeadLetter builds the copy of stored message seq (on subject, of conv)
// for the DEAD stream. Its Nats-Msg-Id makes every stage that gives up on
// the same message leave one letter, not one each; it names the stored
// subject too, since with partition streams a seq alone is not unique.
func DeadLetter(conv string, seq uint64, subject, reason string, data []byte) *nats.Msg {
	if conv == "" {
		conv = "_"
	}
	m := nats.NewMsg(Dead(conv))
	m.Header.Set(HeaderMsgID, "dead:"+strconv.FormatUint(seq, 10)+":"+subject)
	m.Header.Set(HeaderReason, reason)
	m.Header.Set(HeaderSubject, subject)
	m.Header.Set(HeaderSeq, strconv.FormatUint(seq, 10))
	m.Data = data
	return m
}
