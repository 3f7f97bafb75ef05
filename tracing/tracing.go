// Package tracing carries OpenTelemetry trace context through Natter's NATS
// messages and names the spans the parts record, so that one message's
// trace reads the same whichever processes it crossed: the gateway's
// receive of a send frame and its publish to CHAT, the fan-out's handling
// of the stored message and its pushes to the members' subjects, each
// gateway's push to its sockets, and the history writer's append (a span
// per batch, linked to the messages in it).
//
// The context travels in W3C Trace Context headers (traceparent,
// tracestate) on the NATS messages themselves: stored with the message in
// CHAT, so the fan-out and the history writer find it whenever they read
// it, and on the core-NATS pushes from the fan-out to the gateways.
//
// Tracing is off unless a part is given a trace.Tracer: the parts check for
// a nil Tracer before they build a span or a header, so when it is off a
// message costs nothing more, and nothing is stored. The SDK, its exporter
// and sampler are set up by the wiring (app), never here.
package tracing

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Span names, one per step of a message's way.
const (
	// SpanSend is the gateway's handling of a client's send frame, from
	// its checks to the ack (kind server).
	SpanSend = "natter.send"
	// SpanPublish is the gateway's JetStream publish of the envelope to
	// CHAT, retries included (kind producer). Its context is what the
	// stored message carries.
	SpanPublish = "natter.publish"
	// SpanFanout is the fan-out's handling of one stored message or
	// membership event (kind consumer), a child of SpanPublish.
	SpanFanout = "natter.fanout"
	// SpanDeliver is the fan-out's core-NATS publishes of one frame to the
	// members' user subjects (kind producer); each publish carries it.
	SpanDeliver = "natter.deliver"
	// SpanPush is one gateway's write of a pushed frame to the local
	// connections of its user (kind consumer), a child of SpanDeliver: it
	// ends once the frame is queued on each socket.
	SpanPush = "natter.push"
	// SpanAppend is the history writer's append of one batch to the store
	// (kind consumer). A batch holds many traces' messages, so it is a
	// trace of its own with a link to each message's SpanPublish.
	SpanAppend = "natter.history.append"
)

// Attribute keys, after OpenTelemetry's messaging conventions where one
// fits. Spans name conversations (in subjects) and seqs, never users,
// message bodies or tokens.
const (
	// KeySystem is messaging.system, always "nats".
	KeySystem = attribute.Key("messaging.system")
	// KeyOperation is messaging.operation.type: "send", "process" or
	// "receive".
	KeyOperation = attribute.Key("messaging.operation.type")
	// KeyDestination is messaging.destination.name: the subject published
	// to or read from.
	KeyDestination = attribute.Key("messaging.destination.name")
	// KeyDestinationTemplate is messaging.destination.template: the
	// subject with its user id left out (chat.user.*.msg).
	KeyDestinationTemplate = attribute.Key("messaging.destination.template")
	// KeyMessageID is messaging.message.id: the message's seq in CHAT.
	KeyMessageID = attribute.Key("messaging.message.id")
	// KeyBatchCount is messaging.batch.message_count.
	KeyBatchCount = attribute.Key("messaging.batch.message_count")
	// KeyRecipients is how many user subjects a frame went to.
	KeyRecipients = attribute.Key("natter.recipients")
	// KeySockets is how many local connections a push was queued on.
	KeySockets = attribute.Key("natter.sockets")
	// KeyConversation is the conversation id.
	KeyConversation = attribute.Key("natter.conversation")
	// KeyErrorCode is the protocol error code a request was answered with.
	KeyErrorCode = attribute.Key("natter.error_code")
)

// NATS is messaging.system=nats, on every span.
var NATS = KeySystem.String("nats")

// Header names of the W3C Trace Context, as they are stored: lower case,
// the form other NATS tooling reads.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// propagator is W3C Trace Context only: baggage is not carried, so
// nothing a client could set travels into stored messages.
var propagator = propagation.TraceContext{}

// carrier reads and writes a NATS message's headers with the exact key
// given (nats.Header does not canonicalize, unlike http.Header).
type carrier nats.Header

func (c carrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c carrier) Set(key, value string) { c[key] = []string{value} }

func (c carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes the span context of ctx into h: nothing when ctx holds no
// valid span context. h must not be nil.
func Inject(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, carrier(h))
}

// Extract returns ctx with the span context h carries as its remote
// parent; ctx itself when h carries none.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil || len(h[HeaderTraceparent]) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, carrier(h))
}

// Remote returns the span context h carries, invalid when none: what a
// batch span links to.
func Remote(h nats.Header) trace.SpanContext {
	return trace.SpanContextFromContext(Extract(context.Background(), h))
}
