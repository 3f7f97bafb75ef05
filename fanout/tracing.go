package fanout

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/tracing"
)

// The fan-out's spans (package tracing names them): SpanFanout per stored
// message or membership event handled, a child of the context the message
// stored (the gateway's SpanPublish) or a trace of its own when it stored
// none, and SpanDeliver around a message's publishes to the members'
// subjects, each of which carries it. Called only when Config.Tracer is
// set.

// handleTraced is handle inside a SpanFanout span. Every attempt at a
// message the runner retries is a span of its own.
func (f *Fanout) handleTraced(ctx context.Context, msg jetstream.Msg) error {
	ctx = tracing.Extract(ctx, msg.Headers())
	attrs := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		tracing.NATS, tracing.KeyOperation.String("process"), tracing.KeyDestination.String(msg.Subject()))}
	if meta, err := msg.Metadata(); err == nil {
		attrs = append(attrs, trace.WithAttributes(tracing.KeyMessageID.String(strconv.FormatUint(meta.Sequence.Stream, 10))))
	}
	ctx, span := f.cfg.Tracer.Start(ctx, tracing.SpanFanout, attrs...)
	defer span.End()
	err := f.handleMsg(ctx, msg)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "not delivered; tried again")
	}
	return err
}

// deliverTraced is deliverFrom inside a SpanDeliver span whose context
// every publish carries, the origin's subject with the origin header.
func (f *Fanout) deliverTraced(ctx context.Context, subjects []string, frame []byte, origin, originSubj string) error {
	ctx, span := f.cfg.Tracer.Start(ctx, tracing.SpanDeliver, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(tracing.NATS, tracing.KeyOperation.String("send"),
			tracing.KeyDestinationTemplate.String(schema.UserEvent(schema.EventMessage)),
			tracing.KeyRecipients.Int(len(subjects))))
	defer span.End()
	traced := nats.Header{}
	tracing.Inject(ctx, traced)
	withOrigin := traced
	if origin != "" {
		withOrigin = nats.Header{schema.HeaderOrigin: []string{origin}}
		tracing.Inject(ctx, withOrigin)
	}
	m := &nats.Msg{Data: frame}
	for i, s := range subjects {
		if err := f.stopped(i, len(subjects)); err != nil {
			span.SetStatus(codes.Error, "stopping")
			return err
		}
		// PublishMsg copies what it needs; the Msg is reused.
		m.Subject, m.Header = s, traced
		if s == originSubj {
			m.Header = withOrigin
		}
		if err := f.nc.PublishMsg(m); err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
			return fmt.Errorf("%w to %s: %w", ErrDeliver, s, err)
		}
	}
	return nil
}
