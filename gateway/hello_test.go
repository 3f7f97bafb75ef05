package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// TestDeviceLabelBounded checks that a device label over
// protocol.MaxDeviceBytes is refused: the first hello closes with 4001, a
// later hello answers bad_request and keeps the connection and its label.
func TestDeviceLabelBounded(t *testing.T) {
	h := newHarness(t)
	tok, err := auth.IssueHS256(testSecret, "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("d", protocol.MaxDeviceBytes+1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, h.url, client.Options{Token: tok, Device: long}); err == nil {
		_ = c.Close()
		t.Fatal("a first hello with a 129-byte device label was accepted")
	} else if !errors.Is(err, client.ErrUnauthorized) && websocket.CloseStatus(err) != protocol.CloseUnauthorized {
		t.Fatalf("first hello with a long label: %v, want a 4001 close", err)
	}

	c, err := client.Dial(ctx, h.url, client.Options{Token: tok, Device: strings.Repeat("d", protocol.MaxDeviceBytes)})
	if err != nil {
		t.Fatalf("a 128-byte label: %v", err)
	}
	defer c.Close()
	err = do(t, c, map[string]any{"type": protocol.TypeHello, "device": long}, nil)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeBadRequest {
		t.Fatalf("a later hello with a long label: %v, want bad_request", err)
	}
	var w protocol.Welcome
	if err := do(t, c, map[string]any{"type": protocol.TypeHello, "device": "phone"}, &w); err != nil || w.Device != "phone" {
		t.Fatalf("the connection stays usable: %+v, %v", w, err)
	}
}

// TestHeartbeatWholeSeconds checks that a heartbeat that is not whole
// seconds is rounded up to the heartbeat_s welcome announces: with 500 ms,
// welcome said heartbeat_s 0, and a client pacing its pings by it sent none.
func TestHeartbeatWholeSeconds(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Heartbeat = 1500 * time.Millisecond })
	if got := h.dial("alice").Welcome().Heartbeat; got != 2 {
		t.Fatalf("heartbeat_s %d for a 1.5 s heartbeat, want 2", got)
	}
	h = newHarness(t, func(c *Config) { c.Heartbeat = 500 * time.Millisecond })
	if got := h.dial("alice").Welcome().Heartbeat; got != 1 {
		t.Fatalf("heartbeat_s %d for a 0.5 s heartbeat, want 1", got)
	}
}
