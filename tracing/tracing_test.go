package tracing_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/tracing"
)

// TestHeadersRoundTrip: the context written into a NATS header is stored
// under the W3C's lower-case name and read back as a remote parent.
func TestHeadersRoundTrip(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "x")
	defer span.End()

	h := nats.Header{"Natter-Origin": []string{"s1"}}
	tracing.Inject(ctx, h)
	if len(h[tracing.HeaderTraceparent]) != 1 {
		t.Fatalf("headers %v: no %s", h, tracing.HeaderTraceparent)
	}
	if _, ok := h["Traceparent"]; ok {
		t.Fatalf("headers %v: the name was canonicalized", h)
	}
	got := tracing.Remote(h)
	want := span.SpanContext()
	if got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() || !got.IsRemote() || !got.IsSampled() {
		t.Fatalf("read back %+v, want %+v as a remote parent", got, want)
	}
	child := trace.SpanContextFromContext(tracing.Extract(context.Background(), h))
	if child.SpanID() != want.SpanID() {
		t.Fatalf("Extract gave %v", child.SpanID())
	}
}

// TestNoContextNoHeader: a context without a span writes nothing, and a
// message without the header gives no parent.
func TestNoContextNoHeader(t *testing.T) {
	h := nats.Header{}
	tracing.Inject(context.Background(), h)
	if len(h) != 0 {
		t.Fatalf("headers %v from a context without a span", h)
	}
	ctx := context.Background()
	if tracing.Extract(ctx, nil) != ctx || tracing.Extract(ctx, nats.Header{"Nats-Msg-Id": {"x"}}) != ctx {
		t.Fatal("Extract changed the context of a message without trace context")
	}
	if tracing.Remote(nil).IsValid() {
		t.Fatal("Remote of no header is valid")
	}
}
