package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/protocol"
)

func TestRequestIDs(t *testing.T) {
	type custom struct {
		Type string `json:"type"`
		ID   string `json:"id,omitempty"`
	}
	tests := []struct {
		name   string
		req    any
		wantID string // "" means any client-assigned "c<n>"
	}{
		{"Request", protocol.Request{Type: protocol.TypePing}, ""},
		{"*Request", &protocol.Request{Type: protocol.TypePing}, ""},
		{"Request with id", protocol.Request{Type: protocol.TypePing, ID: "mine"}, "mine"},
		{"map", map[string]any{"type": "ping"}, ""},
		{"map with id", map[string]any{"type": "ping", "id": "m1"}, "m1"},
		{"struct", custom{Type: "ping"}, ""},
		{"struct with id", custom{Type: "ping", ID: "s1"}, "s1"},
		{"raw", json.RawMessage(`{"type":"ping"}`), ""},
		{"raw empty id", json.RawMessage(`{"type":"ping","id":""}`), ""},
	}
	c := dial(t, newFakeServer(t), Options{})
	assigned := regexp.MustCompile(`^c[0-9]+$`)
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := c.Request(testCtx(t), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var pong protocol.OK
			if err := json.Unmarshal(raw, &pong); err != nil || pong.Type != protocol.TypePong {
				t.Fatalf("reply %s", raw)
			}
			if tt.wantID != "" && pong.ID != tt.wantID || tt.wantID == "" && !assigned.MatchString(pong.ID) {
				t.Fatalf("reply id %q, want %q", pong.ID, tt.wantID)
			}
			if seen[pong.ID] {
				t.Fatalf("id %q assigned twice", pong.ID)
			}
			seen[pong.ID] = true
		})
	}
	p := &protocol.Request{Type: protocol.TypePing}
	if _, err := c.Request(testCtx(t), p); err != nil || p.ID != "" {
		t.Fatalf("Request mutated the caller's *Request: id %q, err %v", p.ID, err)
	}
	for _, bad := range []any{"ping", []int{1}, map[string]any{"type": "ping", "id": 7}, func() {}} {
		if _, err := c.Request(testCtx(t), bad); err == nil {
			t.Errorf("Request(%T) succeeded, want an error", bad)
		}
	}
}

// TestConcurrentRequests has many goroutines share one connection while the
// server answers out of order; every caller must get its own reply.
func TestConcurrentRequests(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{})
	ctx := testCtx(t)
	const workers, each = 64, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				nonce := fmt.Sprintf("%d-%d", w, i)
				raw, err := c.Request(ctx, map[string]any{"type": "echo", "nonce": nonce, "delay_ms": rand.IntN(5)})
				if err != nil {
					errs <- err
					continue
				}
				var r struct{ Nonce string }
				if err := json.Unmarshal(raw, &r); err != nil || r.Nonce != nonce {
					errs <- fmt.Errorf("request %s got reply %s", nonce, raw)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	select {
	case ev := <-c.Events():
		t.Fatalf("unexpected event %s", ev.Raw)
	default:
	}
}

// TestEventsOrderAndBackpressure pushes more events than the buffer holds
// while nobody reads Events: the reply behind them still arrives (a reader
// that waited for room in Events held it back for good: a benchmark that
// created groups without reading its pushes hung), and then every event
// comes in order, none dropped.
func TestEventsOrderAndBackpressure(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{EventBuffer: 8})
	ctx := testCtx(t)
	const n = 500
	if _, err := c.Request(ctx, map[string]any{"type": "push", "event": "tick", "n": n}); err != nil {
		t.Fatal(err)
	}
	// A second request behind the first's pushes is answered too.
	if _, err := c.Request(ctx, protocol.Request{Type: protocol.TypePing}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev, err := c.NextEvent(ctx, "tick")
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ N int }
		if err := ev.Decode(&e); err != nil || e.N != i {
			t.Fatalf("event %d = %s", i, ev.Raw)
		}
	}
}

// TestEventBacklogBound: a consumer that never reads costs bounded memory;
// over the bound the connection ends with ErrEventBacklog and the pending
// request fails with it instead of hanging.
func TestEventBacklogBound(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{EventBuffer: 4, MaxEventBacklog: 2000})
	ctx := testCtx(t)
	_, err := c.Request(ctx, map[string]any{"type": "push", "event": "tick", "n": 500})
	if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrEventBacklog) {
		t.Fatalf("Request = %v, want ErrClosed wrapping ErrEventBacklog", err)
	}
	if !errors.Is(c.Err(), ErrEventBacklog) {
		t.Fatalf("Err() = %v, want ErrEventBacklog", c.Err())
	}
	// What was held is still delivered, in order, then Events closes.
	got := 0
	for ev := range c.Events() {
		var e struct{ N int }
		if err := ev.Decode(&e); err != nil || e.N != got {
			t.Fatalf("event %d = %s", got, ev.Raw)
		}
		got++
	}
	if got < 4 {
		t.Fatalf("%d events delivered before the end, want at least the buffer's 4", got)
	}
}

func TestNextEventFilters(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{})
	ctx := testCtx(t)
	for _, ev := range []string{"typing", "member", "typing", "read"} {
		if _, err := c.Request(ctx, map[string]any{"type": "push", "event": ev, "n": 1}); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := c.NextEvent(ctx, "member", "read")
	if err != nil || ev.Type != "member" {
		t.Fatalf("NextEvent = %+v, %v; want member", ev, err)
	}
	ev, err = c.NextEvent(ctx, "read")
	if err != nil || ev.Type != "read" {
		t.Fatalf("NextEvent = %+v, %v; want read (typing discarded)", ev, err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := c.NextEvent(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NextEvent on empty stream = %v, want DeadlineExceeded", err)
	}
}

func TestUnmatchedReplyIsEvent(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{})
	ctx := testCtx(t)
	if _, err := c.Request(ctx, map[string]any{"type": "orphan"}); err != nil {
		t.Fatal(err)
	}
	ev, err := c.NextEvent(ctx)
	if err != nil || ev.Type != protocol.TypePong || !json.Valid(ev.Raw) {
		t.Fatalf("orphan reply event = %+v, %v", ev, err)
	}

	// A reply that arrives after its request gave up is an event too, and
	// the connection survives the cancellation.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err = c.Request(short, map[string]any{"type": "echo", "nonce": "late", "delay_ms": 100})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Request = %v, want DeadlineExceeded", err)
	}
	ev, err = c.NextEvent(ctx, "echo")
	var late struct{ Nonce string }
	if err != nil || ev.Decode(&late) != nil || late.Nonce != "late" {
		t.Fatalf("late reply event = %+v, %v", ev, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping after a cancelled request: %v", err)
	}
}

func TestErrorReply(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{})
	ctx := testCtx(t)
	raw, err := c.Request(ctx, map[string]any{"type": "fail"})
	var perr *protocol.Error
	if !errors.As(err, &perr) || perr.Code != protocol.CodeForbidden || perr.Message != "not a member" {
		t.Fatalf("Request err = %v, want *protocol.Error forbidden", err)
	}
	if !json.Valid(raw) {
		t.Fatalf("raw reply not returned with the error: %q", raw)
	}
	// A malformed frame gets an error without id: an event, and the
	// connection stays.
	if err := c.WriteRaw(ctx, []byte(`{"type":`)); err != nil {
		t.Fatal(err)
	}
	ev, err := c.NextEvent(ctx, protocol.TypeError)
	if err != nil || ev.Decode(&perr) != nil || perr.Code != protocol.CodeBadRequest {
		t.Fatalf("malformed frame: event %+v, %v", ev, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
