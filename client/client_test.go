package client

import (
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/natter-chat/natter/protocol"
)

func TestDialAuth(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantDevice string
		wantHellos int // hello frames seen after the handshake (header auth + device)
	}{
		{name: "hello", opts: Options{Token: goodToken, Device: "phone-1"}, wantDevice: "phone-1"},
		{name: "header", opts: Options{Token: goodToken, HeaderAuth: true}},
		{name: "header+device", opts: Options{Token: goodToken, HeaderAuth: true, Device: "tab"}, wantDevice: "tab", wantHellos: 1},
		{name: "compression", opts: Options{Token: goodToken, Compression: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			c := dial(t, f, tt.opts)
			w := c.Welcome()
			if w.Type != protocol.TypeWelcome || w.User != "u1" || w.Session != "s1" || w.Heartbeat != 20 {
				t.Fatalf("Welcome() = %+v", w)
			}
			if w.Device != tt.wantDevice {
				t.Fatalf("welcome device = %q, want %q", w.Device, tt.wantDevice)
			}
			hello := f.last(protocol.TypeHello)
			if (hello != nil) != (tt.wantHellos == 1) || (hello != nil && hello["token"] != nil) {
				t.Fatalf("hello after header auth = %v, want %d without token", hello, tt.wantHellos)
			}
			f.mu.Lock()
			offered := strings.Contains(f.exts[0], "permessage-deflate")
			f.mu.Unlock()
			if offered != tt.opts.Compression {
				t.Fatalf("permessage-deflate offered = %v, want %v", offered, tt.opts.Compression)
			}
			if err := c.Ping(testCtx(t)); err != nil {
				t.Fatalf("Ping after Dial: %v", err)
			}
		})
	}
}

func TestDialRefused(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantUnauth bool
		wantInErr  string
	}{
		{name: "header 401", opts: Options{Token: badToken, HeaderAuth: true}, wantUnauth: true, wantInErr: "401"},
		{name: "hello 4001", opts: Options{Token: badToken}, wantUnauth: true, wantInErr: "bad token"},
		{name: "hello error frame", opts: Options{Token: "refuse"}, wantUnauth: true, wantInErr: "expired"},
		{name: "other close", opts: Options{Token: "crash"}, wantInErr: "boom"},
		{name: "http 503", opts: Options{Token: goodToken, Header: http.Header{"X-Fail": {"1"}}}, wantInErr: "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			c, err := Dial(testCtx(t), f.url(), tt.opts)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if errors.Is(err, ErrUnauthorized) != tt.wantUnauth {
				t.Fatalf("errors.Is(%v, ErrUnauthorized) = %v, want %v", err, !tt.wantUnauth, tt.wantUnauth)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantInErr)
			}
		})
	}
}

func TestEarlyPushIsDelivered(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{Token: "early"})
	ev, err := c.NextEvent(testCtx(t), "presence")
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ User string }
	if err := ev.Decode(&p); err != nil || p.User != "u9" {
		t.Fatalf("early push = %s (%v)", ev.Raw, err)
	}
}

func TestServerClose(t *testing.T) {
	f := newFakeServer(t)
	c := dial(t, f, Options{})
	ctx := testCtx(t)

	// A request pending when the server closes fails with ErrClosed.
	pending := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, map[string]any{"type": "never"})
		pending <- err
	}()
	waitFor(t, func() bool { return f.last("never") != nil })
	if err := c.WriteRaw(ctx, []byte(`{"type":"close","code":4008,"reason":"slow consumer"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after server close")
	}
	err := <-pending
	if !errors.Is(err, ErrClosed) || websocket.CloseStatus(err) != protocol.CloseSlowOrAbusive {
		t.Fatalf("pending request error = %v, want ErrClosed with status 4008", err)
	}
	if got := c.CloseStatus(); got != protocol.CloseSlowOrAbusive {
		t.Fatalf("CloseStatus() = %d, want 4008", got)
	}
	if got := c.CloseReason(); got != "slow consumer" {
		t.Fatalf("CloseReason() = %q", got)
	}
	if c.Err() == nil || errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err() = %v, want the server's close, not ErrClosed", c.Err())
	}
	if _, err := c.Request(ctx, protocol.Request{Type: protocol.TypePing}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Request after close = %v, want ErrClosed", err)
	}
	if _, err := c.NextEvent(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("NextEvent after close = %v, want ErrClosed", err)
	}
	if _, ok := <-c.Events(); ok {
		t.Fatal("Events not closed")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close after server close = %v", err)
	}
}

func TestClose(t *testing.T) {
	f := newFakeServer(t)
	c := dial(t, f, Options{EventBuffer: 2})
	ctx := testCtx(t)
	// Fill Events so the reader is blocked delivering: Close must still end it.
	if err := c.WriteRaw(ctx, []byte(`{"type":"push","event":"tick","n":10}`)); err != nil {
		t.Fatal(err)
	}
	pending := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, map[string]any{"type": "never"})
		pending <- err
	}()
	waitFor(t, func() bool { return len(c.Events()) == 2 && f.last("never") != nil })

	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed when Close returned")
	}
	if err := <-pending; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending request error = %v, want ErrClosed", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", c.Err())
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := c.WriteRaw(ctx, []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteRaw after Close = %v, want ErrClosed", err)
	}
}

func TestCloseNormal(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := c.CloseStatus(); got != int(websocket.StatusNormalClosure) {
		t.Fatalf("CloseStatus() after Close = %d, want 1000", got)
	}
}

func TestReadLimit(t *testing.T) {
	c := dial(t, newFakeServer(t), Options{})
	ctx := testCtx(t)
	if _, err := c.Request(ctx, map[string]any{"type": "big", "size": ReadLimit - 100}); err != nil {
		t.Fatalf("frame just under the limit: %v", err)
	}
	_, err := c.Request(ctx, map[string]any{"type": "big", "size": ReadLimit + 1})
	// The client itself closes with 1009; no close frame is received, so
	// CloseStatus stays -1 (websocket.CloseStatus semantics).
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "message too big") {
		t.Fatalf("oversized frame: err %v, want ErrClosed for a message too big", err)
	}
}

// TestNoGoroutineLeak checks Close leaves nothing running on the client side.
func TestNoGoroutineLeak(t *testing.T) {
	f := newFakeServer(t)
	before := runtime.NumGoroutine()
	clients := make([]*Client, 50)
	for i := range clients {
		clients[i] = dial(t, f, Options{})
	}
	if n := runtime.NumGoroutine(); n < before+50 {
		t.Fatalf("expected a reader goroutine per client: %d -> %d", before, n)
	}
	for _, c := range clients {
		c.Close()
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before+2 })
}

// waitFor polls cond for up to 5 s.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatal("condition not met within 5s")
}
