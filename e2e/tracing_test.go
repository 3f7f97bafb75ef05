package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/tracing"
)

// tracedProvider is one process's tracer provider, exporting as each span
// ends into exp; instance names the process in the spans' resource.
func tracedProvider(t *testing.T, exp *tracetest.InMemoryExporter, instance string) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.instance.id", instance))))
	t.Cleanup(func() { _ = tp.Shutdown(ctxT(t)) })
	return tp
}

// storedHeaders reads the headers CHAT stored with the message at seq, as
// the operator sees them.
func storedHeaders(t *testing.T, e *env, seq uint64) nats.Header {
	t.Helper()
	nc, err := nats.Connect(e.app.NATS().OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctxT(t), schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctxT(t), seq)
	if err != nil {
		t.Fatal(err)
	}
	return m.Header
}

// TestTracingFollowsAMessage sends a message through a gateway in one
// process to a member connected to another (natter serve, which runs the
// fan-out and the history writer too), each process with its own tracer
// provider, and checks the spans make one trace across the NATS hops:
// send → publish → (stored in CHAT) → fan-out → deliver → the receiver's
// gateway's push, with the history append linked to the publish.
func TestTracingFollowsAMessage(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	e := start(t, func(c *app.Config) { c.Tracing.Provider = tracedProvider(t, exp, "serve") })
	gw := startWith(t, app.Config{
		HTTPAddr: "127.0.0.1:0",
		NATSURL:  e.app.NATS().RoleURL(natsrv.RoleGateway),
		Roles:    app.Roles{Gateway: true},
		Auth:     auth.Config{Secret: secret},
		Logger:   testLogger(),
		Tracing:  app.TracingConfig{Provider: tracedProvider(t, exp, "gateway2")},
	})
	alice, bob := gw.dial(t, "alice"), e.dial(t, "bob")
	ctx := ctxT(t)
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	const body = "a body no span may hold"
	ack, err := alice.Send(ctx, conv.Conv, "m1", text(body))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, bob); m.Seq != ack.Seq {
		t.Fatalf("bob got seq %d, want %d", m.Seq, ack.Seq)
	}
	seq := strconv.FormatUint(ack.Seq, 10)

	// Spans end after the frame is on its way: wait for the last ones.
	var send, publish, fan, deliver, push, appendSpan tracetest.SpanStub
	deadline := time.Now().Add(15 * time.Second)
	for {
		spans := exp.GetSpans()
		send, _ = find(spans, tracing.SpanSend, "")
		publish, _ = find(spans, tracing.SpanPublish, "")
		fan, _ = findAttr(spans, tracing.SpanFanout, tracing.KeyMessageID, seq)
		deliver, _ = findChild(spans, tracing.SpanDeliver, fan.SpanContext)
		push, _ = find(spans, tracing.SpanPush, "serve")
		appendSpan, _ = findLinked(spans, tracing.SpanAppend, publish.SpanContext)
		if send.Name != "" && publish.Name != "" && fan.Name != "" && deliver.Name != "" && push.Name != "" && appendSpan.Name != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("missing spans after 15 s: send %q publish %q fanout %q deliver %q push %q append %q; have %v",
				send.Name, publish.Name, fan.Name, deliver.Name, push.Name, appendSpan.Name, names(spans))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// One trace, each span the child of the one before, across the hops.
	chain := []struct {
		name string
		s    tracetest.SpanStub
		kind trace.SpanKind
		// instance is the process that must have recorded it.
		instance string
		remote   bool // its parent came over NATS
	}{
		{"send", send, trace.SpanKindServer, "gateway2", false},
		{"publish", publish, trace.SpanKindProducer, "gateway2", false},
		{"fanout", fan, trace.SpanKindConsumer, "", true},
		{"deliver", deliver, trace.SpanKindProducer, "", false},
		{"push", push, trace.SpanKindConsumer, "serve", true},
	}
	traceID := send.SpanContext.TraceID()
	if send.Parent.IsValid() {
		t.Errorf("send has a parent %v: want a root", send.Parent)
	}
	for i, c := range chain {
		if c.s.SpanContext.TraceID() != traceID {
			t.Errorf("%s is in trace %s, want %s", c.name, c.s.SpanContext.TraceID(), traceID)
		}
		if c.s.SpanKind != c.kind {
			t.Errorf("%s kind = %v, want %v", c.name, c.s.SpanKind, c.kind)
		}
		if c.instance != "" && instanceOf(c.s) != c.instance {
			t.Errorf("%s recorded by %q, want %q", c.name, instanceOf(c.s), c.instance)
		}
		if i == 0 {
			continue
		}
		prev := chain[i-1]
		if c.s.Parent.SpanID() != prev.s.SpanContext.SpanID() {
			t.Errorf("%s's parent = %s, want %s's %s", c.name, c.s.Parent.SpanID(), prev.name, prev.s.SpanContext.SpanID())
		}
		if c.s.Parent.IsRemote() != c.remote {
			t.Errorf("%s's parent remote = %v, want %v", c.name, c.s.Parent.IsRemote(), c.remote)
		}
		if c.s.StartTime.Before(prev.s.StartTime) {
			t.Errorf("%s started before its parent %s", c.name, prev.name)
		}
	}
	if got := attr(publish, tracing.KeyMessageID); got != seq {
		t.Errorf("publish's message id = %q, want the seq %s", got, seq)
	}
	if got := attr(publish, tracing.KeyDestination); got != schema.Msg(conv.Conv) {
		t.Errorf("publish's destination = %q, want %s", got, schema.Msg(conv.Conv))
	}
	if got := attr(push, tracing.KeySockets); got != "1" {
		t.Errorf("bob's push went to %s sockets, want 1", got)
	}
	if appendSpan.Parent.IsValid() || appendSpan.SpanContext.TraceID() == traceID {
		t.Errorf("the history append is in the message's trace; want a trace of its own, linked")
	}

	// The stored message carries the publish span's context, so a fan-out
	// or writer in any process continues the trace.
	h := storedHeaders(t, e, ack.Seq)
	want := fmt.Sprintf("00-%s-%s-01", traceID, publish.SpanContext.SpanID())
	if got := h.Get(tracing.HeaderTraceparent); got != want {
		t.Errorf("stored traceparent = %q, want %q", got, want)
	}

	// No span holds the message's body or a client's token.
	for _, s := range exp.GetSpans() {
		for _, kv := range append(slices.Clone(s.Attributes), s.Resource.Attributes()...) {
			if v := kv.Value.String(); strings.Contains(v, body) || strings.Contains(v, "eyJ") {
				t.Errorf("span %s attribute %s = %q", s.Name, kv.Key, v)
			}
		}
	}
}

// TestTracingOffStoresNothing: without a tracer (the default) a stored
// message carries no trace header, so tracing that is off costs no bytes.
func TestTracingOffStoresNothing(t *testing.T) {
	e := start(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	ctx := ctxT(t)
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := alice.Send(ctx, conv.Conv, "m1", text("hi"))
	if err != nil {
		t.Fatal(err)
	}
	nextMessage(t, bob)
	h := storedHeaders(t, e, ack.Seq)
	if h.Get(schema.HeaderMsgID) == "" {
		t.Fatalf("stored headers %v: no %s, so this read the wrong message", h, schema.HeaderMsgID)
	}
	for _, k := range []string{tracing.HeaderTraceparent, tracing.HeaderTracestate} {
		if v, ok := h[k]; ok {
			t.Errorf("tracing is off but the message stored %s: %v", k, v)
		}
	}
}

// TestTracingContinuesAServicesTrace: a stored message with a traceparent (an
// internal service that traces its publishes) continues the service's
// trace in the fan-out.
func TestTracingContinuesAServicesTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	e := start(t, func(c *app.Config) { c.Tracing.Provider = tracedProvider(t, exp, "serve") })
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.app.NATS().RoleURL(natsrv.RoleService), nats.CustomInboxPrefix(schema.Inbox(natsrv.RoleService)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	msg := nats.NewMsg(schema.Msg(conv.Conv))
	msg.Header.Set(schema.HeaderMsgID, "svc:1")
	msg.Header.Set(tracing.HeaderTraceparent, parent)
	msg.Data = []byte(`{"sender":"svc-x","client_id":"1","body":{"text":"from a service"}}`)
	pa, err := js.PublishMsg(ctxT(t), msg)
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, bob); m.Seq != pa.Sequence {
		t.Fatalf("bob got seq %d, want %d", m.Seq, pa.Sequence)
	}
	seq := strconv.FormatUint(pa.Sequence, 10)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if fan, ok := findAttr(exp.GetSpans(), tracing.SpanFanout, tracing.KeyMessageID, seq); ok {
			if got := fan.Parent.TraceID().String() + "/" + fan.Parent.SpanID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7" || !fan.Parent.IsRemote() {
				t.Fatalf("fan-out's parent = %s (remote %v), want the service's span", got, fan.Parent.IsRemote())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fan-out span for seq %s; have %v", seq, names(exp.GetSpans()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// find returns the first span named name, recorded by instance ("" any).
func find(spans tracetest.SpanStubs, name, instance string) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.Name == name && (instance == "" || instanceOf(s) == instance) {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

func findAttr(spans tracetest.SpanStubs, name string, key attribute.Key, value string) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.Name == name && attr(s, key) == value {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

func findChild(spans tracetest.SpanStubs, name string, parent trace.SpanContext) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.Name == name && parent.IsValid() && s.Parent.SpanID() == parent.SpanID() {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

func findLinked(spans tracetest.SpanStubs, name string, to trace.SpanContext) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.Name != name || !to.IsValid() {
			continue
		}
		for _, l := range s.Links {
			if l.SpanContext.SpanID() == to.SpanID() && l.SpanContext.TraceID() == to.TraceID() {
				return s, true
			}
		}
	}
	return tracetest.SpanStub{}, false
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

func instanceOf(s tracetest.SpanStub) string {
	if s.Resource == nil {
		return ""
	}
	v, _ := s.Resource.Set().Value("service.instance.id")
	return v.AsString()
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name + "@" + instanceOf(s)
	}
	return out
}
