package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// countsBy counts Inc calls per key, for the Closes and Refused hooks.
type countsBy[K comparable] struct {
	mu sync.Mutex
	n  map[K]int
}

func (c *countsBy[K]) Inc(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[K]int{}
	}
	c.n[k]++
}

func (c *countsBy[K]) get(k K) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// waitCount waits until c counts want for k.
func waitCount[K comparable](t *testing.T, c *countsBy[K], k K, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.get(k) != want {
		if time.Now().After(deadline) {
			t.Fatalf("count of %v is %d; want %d", k, c.get(k), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The close and refusal counters behind natter_gateway_closes_total and
// natter_gateway_refused_total (alerts on 4008/1009 closes and on rate
// limiting): a frame over MaxFrameBytes, closed by the WebSocket library
// with 1009, and requests over the rate limit until the abuse close 4008.
func TestCloseAndRefusalCounters(t *testing.T) {
	closes, refused := &countsBy[uint16]{}, &countsBy[string]{}
	harnessMetrics[t] = Metrics{Closes: closes, Refused: refused}
	t.Cleanup(func() { delete(harnessMetrics, t) })
	h := newHarness(t, func(c *Config) {
		c.MaxFrameBytes = 4096
		c.RateBurst, c.RateSustained, c.AbuseLimit = 2, 0.001, 3
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	big := dialRaw(t, h, "alice", false)
	_ = big.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","pad":"`+strings.Repeat("x", 5000)+`"}`))
	if _, _, err := big.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("frame over MaxFrameBytes: %v; want a 1009 close", err)
	}
	waitCount(t, closes, 1009, 1)

	spam := dialRaw(t, h, "bob", false)
	var closed error
	for i := 0; i < 20 && closed == nil; i++ {
		if err := spam.Write(ctx, websocket.MessageText, []byte(`{"type":"conversations","id":"c"}`)); err != nil {
			closed = err
			break
		}
		_, _, closed = spam.Read(ctx)
	}
	if websocket.CloseStatus(closed) != 4008 {
		t.Fatalf("requests far over the rate limit: %v; want a 4008 close", closed)
	}
	waitCount(t, closes, 4008, 1)
	if n := refused.get(RefusedRate); n < 3 {
		t.Fatalf("%d requests counted as refused for the rate; want at least 3", n)
	}
	if n := closes.get(1009) + closes.get(4008); n != 2 {
		t.Fatalf("closes counted: %v; want one 1009 and one 4008", closes.n)
	}
}
