package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

const testSecret = "gateway-test-secret"

// harnessMetrics are the metric hooks a test's harness gateway gets (none
// unless the test sets them before newHarness).
var harnessMetrics = map[*testing.T]Metrics{}

// harness is one gateway on an in-process JetStream, served by an httptest
// server, with fakes of the parts behind it that tests fill and inspect.
type harness struct {
	t        *testing.T
	srv      *Server
	url      string
	nc       *nats.Conn // the test's own connection, not the gateway's
	js       jetstream.JetStream
	convs    *fakeConvs
	msgs     *fakeMessages
	presence *fakePresence
	devices  *fakeDevices
	blocks   *fakeBlocks
}

// newHarness starts a gateway; tweak may change its config.
func newHarness(t *testing.T, tweak ...func(*Config)) *harness {
	t.Helper()
	t.Cleanup(natstest.CheckGoroutines(t))
	ns := natstest.Start(t)
	gwNC, gwJS := natstest.Connect(t, ns)
	nc, js := natstest.Connect(t, ns)
	return harnessOn(t, schema.Config{}, gwNC, gwJS, nc, js, tweak...)
}

// harnessOn starts a gateway on the connection gwNC, ensuring the schema
// as sc says; nc is the test's own connection.
func harnessOn(t *testing.T, sc schema.Config, gwNC *nats.Conn, gwJS jetstream.JetStream, nc *nats.Conn, js jetstream.JetStream, tweak ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, nc: nc, js: js}
	h.start(t, sc, gwNC, gwJS, harnessMetrics[t], tweak...)
	return h
}

// start ensures the schema as sc says and starts h's gateway on gwNC with
// fresh fakes; benchmarks call it with an h of their own.
func (h *harness) start(tb testing.TB, sc schema.Config, gwNC *nats.Conn, gwJS jetstream.JetStream, metrics Metrics, tweak ...func(*Config)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := schema.Ensure(ctx, h.js, sc); err != nil {
		tb.Fatalf("ensure schema: %v", err)
	}
	verifier, err := auth.New(auth.Config{Secret: testSecret})
	if err != nil {
		tb.Fatal(err)
	}
	h.convs = newFakeConvs()
	h.msgs = newFakeMessages()
	h.presence = newFakePresence()
	h.devices = newFakeDevices()
	h.blocks = newFakeBlocks()
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range tweak {
		f(&cfg)
	}
	deps := Deps{
		Verifier: verifier, NC: gwNC, JS: gwJS,
		Conversations: h.convs, ReadMarkers: h.convs, Messages: h.msgs,
		Presence: h.presence, Devices: h.devices, Consent: h.convs, Blocks: h.blocks, Groups: noGroups{},
		Metrics: metrics,
	}
	if cfg.MemberViews > 0 {
		// Sends keep views only when a test asks (the fakes announce no
		// membership events, so a test that changes membership must).
		deps.MemberViews = h.convs
	}
	h.srv, err = New(cfg, deps)
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(h.srv)
	h.url = "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/ws"
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			tb.Errorf("gateway shutdown: %v", err)
		}
		ts.Close()
	})
}

// dial connects user over a real WebSocket and returns the client.
func (h *harness) dial(user string) *client.Client {
	h.t.Helper()
	tok, err := auth.IssueHS256(testSecret, user, time.Hour, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, h.url, client.Options{Token: tok, Device: user + "-phone"})
	if err != nil {
		h.t.Fatalf("dial as %s: %v", user, err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

// do sends req and decodes the reply into out (when not nil).
func do(t *testing.T, c *client.Client, req any, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := c.Request(ctx, req)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return nil
}

// mustDo is do that fails the test on an error reply.
func mustDo(t *testing.T, c *client.Client, req any, out any) {
	t.Helper()
	if err := do(t, c, req, out); err != nil {
		t.Fatalf("%+v: %v", req, err)
	}
}

// wantCode checks that err is an error reply with code and, when msg is
// not empty, a message containing msg.
func wantCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a %s error reply", err, code)
	}
	if pe.Code != code || !strings.Contains(pe.Message, msg) {
		t.Fatalf("got %s %q, want %s containing %q", pe.Code, pe.Message, code, msg)
	}
}

// subscribe collects what NATS delivers on subject.
func (h *harness) subscribe(subject string) chan *nats.Msg {
	h.t.Helper()
	ch := make(chan *nats.Msg, 64)
	sub, err := h.nc.ChanSubscribe(subject, ch)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.nc.Flush(); err != nil {
		h.t.Fatal(err)
	}
	return ch
}

// next waits for a message on ch.
func next(t *testing.T, ch chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published in 5 s")
		return nil
	}
}

// nextEvent waits for the next push of one of types.
func nextEvent(t *testing.T, c *client.Client, types ...string) client.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := c.NextEvent(ctx, types...)
	if err != nil {
		t.Fatalf("waiting for %v: %v", types, err)
	}
	return ev
}

func req(typ string, f func(*protocol.Request)) *protocol.Request {
	r := &protocol.Request{Type: typ}
	if f != nil {
		f(r)
	}
	return r
}
