package gateway

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/tracing"
)

// The gateway's spans (package tracing names them): SpanSend around a
// client's send, SpanPublish around its JetStream publish, whose context
// the stored message carries, and SpanPush for a frame the fan-out pushed
// to a user of this gateway. Every function here is called only when
// Deps.Tracer was set: with tracing off the hot paths take none of them,
// so a message costs no allocation and stores no header more.

// sendTraced is send inside a SpanSend span.
func (sess *session) sendTraced(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	ctx, span := sess.srv.tracer.Start(ctx, tracing.SpanSend, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(tracing.NATS))
	defer span.End()
	if protocol.ValidID(req.Conv) {
		span.SetAttributes(tracing.KeyConversation.String(req.Conv))
	}
	resp, perr := sess.sendMessage(ctx, req)
	if perr != nil {
		span.SetAttributes(tracing.KeyErrorCode.String(perr.Code))
		span.SetStatus(codes.Error, perr.Message)
	}
	return resp, perr
}

// startPublish starts the SpanPublish span of msg and writes its context
// into msg's headers, so the message stores it.
func (sess *session) startPublish(ctx context.Context, msg *nats.Msg) (context.Context, trace.Span) {
	ctx, span := sess.srv.tracer.Start(ctx, tracing.SpanPublish, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(tracing.NATS, tracing.KeyOperation.String("send"), tracing.KeyDestination.String(msg.Subject)))
	tracing.Inject(ctx, msg.Header)
	return ctx, span
}

// endPublish ends a SpanPublish span with the publish's outcome.
func endPublish(span trace.Span, ack *jetstream.PubAck, perr *protocol.Error) {
	if perr != nil {
		span.SetStatus(codes.Error, perr.Message)
	} else if ack != nil {
		span.SetAttributes(tracing.KeyMessageID.String(strconv.FormatUint(ack.Sequence, 10)))
	}
	span.End()
}

// startPush starts the SpanPush span of a pushed frame, a child of the
// fan-out's SpanDeliver that m carries; nil when m carries none (typing
// and read notices, pushes of an untraced fan-out).
func (h *hub) startPush(m *nats.Msg) trace.Span {
	parent := tracing.Extract(context.Background(), m.Header)
	if !trace.SpanContextFromContext(parent).IsValid() {
		return nil
	}
	_, event := schema.SplitUser(m.Subject)
	opts := messagePushOpts
	if event != schema.EventMessage {
		opts = pushOpts(event)
	}
	_, span := h.srv.tracer.Start(parent, tracing.SpanPush, opts...)
	return span
}

// messagePushOpts are the start options of a message's SpanPush, the one
// per member and message: built once.
var messagePushOpts = pushOpts(schema.EventMessage)

func pushOpts(event string) []trace.SpanStartOption {
	return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(tracing.NATS, tracing.KeyOperation.String("process"),
			tracing.KeyDestinationTemplate.String(schema.UserEvent(event)))}
}
