package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/nats/schema"
)

// writeCounter counts socket writes (Metrics.SocketWrites).
type writeCounter struct{ n atomic.Int64 }

func (c *writeCounter) Inc() { c.n.Add(1) }

// dialRaw opens a plain WebSocket as user, authenticated by header, and
// reads the welcome.
func dialRaw(t *testing.T, h *harness, user string, compression bool) *websocket.Conn {
	t.Helper()
	tok, err := auth.IssueHS256(testSecret, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}}
	if compression {
		opts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	c, resp, err := websocket.Dial(ctx, h.url, opts)
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); compression != strings.Contains(got, "permessage-deflate") {
		t.Fatalf("compression %v, but the server answered extensions %q", compression, got)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	_, data, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(data), `"welcome"`) {
		t.Fatalf("first frame %s, %v; want the welcome", data, err)
	}
	return c
}

// testFrames are pushes of the given sizes (of padding).
func testFrames(sizes ...int) [][]byte {
	var frames [][]byte
	for i, size := range sizes {
		pad := strings.Repeat(fmt.Sprintf("%d-", i), size)[:size]
		f, _ := json.Marshal(map[string]any{"type": "test", "n": i, "pad": pad})
		frames = append(frames, f)
	}
	return frames
}

// TestQueuedFramesGoOutInOneWrite holds the writers of two connections of
// one user while frames are pushed to both, then lets them go: every
// frame arrives intact and in order, over real sockets, compressed or
// not, and each connection got them with a few writes rather than one
// per frame.
func TestQueuedFramesGoOutInOneWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		// Frames of every size class: under the compression threshold,
		// over it, and larger than a whole batch.
		frames [][]byte
		// maxWrites is per connection, without and with compression.
		maxWrites [2]int64
	}{
		{"small", testFrames(10, 100, 511, 512, 600, 2000, 30, 1, 126, 40), [2]int64{1, 1}},
		// A batch is written once it reaches 64 KiB: 74 KB, 71 KB,
		// 64 KiB, 40 B. Compressed, the padding shrinks to almost
		// nothing: one write.
		{"large", testFrames(10, 100, 511, 512, 600, 2000, 30, 70_000, 130, 5000, 1, 126, 65_535, 65_536, 40), [2]int64{4, 1}},
	} {
		for i, compression := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/compression=%v", tc.name, compression), func(t *testing.T) {
				testQueuedFrames(t, compression, tc.frames, tc.maxWrites[i])
			})
		}
	}
}

func testQueuedFrames(t *testing.T, compression bool, frames [][]byte, maxWrites int64) {
	{
		{
			var writes writeCounter
			h := newHarness(t, func(c *Config) { c.Compression = compression })
			h.srv.metrics.SocketWrites = &writes
			conns := []*websocket.Conn{dialRaw(t, h, "alice", compression), dialRaw(t, h, "alice", compression)}
			h.srv.hub.mu.RLock()
			sessions := h.srv.hub.users["alice"].sessions
			h.srv.hub.mu.RUnlock()
			if len(sessions) != 2 {
				t.Fatalf("alice has %d sessions; want 2", len(sessions))
			}
			for _, s := range sessions {
				if s.deflate != compression {
					t.Fatalf("session deflate = %v; want %v", s.deflate, compression)
				}
				// The welcome's writer ends once it finds the queue empty.
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
					s.qmu.Lock()
					if !s.writing {
						break
					}
					s.qmu.Unlock()
					if time.Now().After(deadline) {
						t.Fatal("a writer is still running after the welcome")
					}
				}
				s.writing = true // as if a writer ran: pushes only queue
				s.qmu.Unlock()
			}
			// Half of them as one push to both connections (compressed
			// once for both), half as a reply to each.
			for i, f := range frames {
				if i%2 == 0 {
					h.srv.hub.push("alice", &nats.Msg{Subject: schema.User("alice", schema.EventMessage), Data: f})
					continue
				}
				for _, s := range sessions {
					s.push(f)
				}
			}
			before := writes.n.Load()
			for _, s := range sessions {
				go s.writeLoop()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for ci, c := range conns {
				for i, want := range frames {
					_, got, err := c.Read(ctx)
					if err != nil {
						t.Fatalf("connection %d, frame %d: %v", ci, i, err)
					}
					if string(got) != string(want) {
						t.Fatalf("connection %d, frame %d: got %d bytes %.60q…; want %d bytes %.60q…", ci, i, len(got), got, len(want), want)
					}
				}
			}
			if got := writes.n.Load() - before; got > 2*maxWrites {
				t.Fatalf("%d frames to 2 connections took %d writes; want at most %d", len(frames), got, 2*maxWrites)
			}
			// The writers finish after the kernel took the bytes, so
			// possibly after the client read them.
			for _, s := range sessions {
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
					s.qmu.Lock()
					idle := s.queue == nil && !s.writing
					s.qmu.Unlock()
					if idle && s.pending.Load() == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("after everything was written: pending = %d, idle = %v; want 0, true", s.pending.Load(), idle)
					}
				}
			}
		}
	}
}

// TestFramesLargerThanTheReadBuffer sends requests around and far above
// the connection's read buffer (readBufferSize, 512 bytes since issue 19),
// compressed or not, up to MaxFrameBytes: each is read whole and
// answered; one byte over MaxFrameBytes still closes the connection.
func TestFramesLargerThanTheReadBuffer(t *testing.T) {
	for _, compression := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compression), func(t *testing.T) {
			const maxFrame = 200_000
			h := newHarness(t, func(c *Config) { c.Compression = compression; c.MaxFrameBytes = maxFrame })
			c := dialRaw(t, h, "alice", compression)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			frame := func(size int) []byte {
				head := fmt.Sprintf(`{"type":"ping","id":"p%d","pad":"`, size)
				return []byte(head + strings.Repeat("x", size-len(head)-2) + `"}`)
			}
			for _, size := range []int{60, readBufferSize - 1, readBufferSize, readBufferSize + 1, 2*readBufferSize + 7, 4096, 70_000, maxFrame} {
				f := frame(size)
				if len(f) != size {
					t.Fatalf("frame of %d bytes; want %d", len(f), size)
				}
				if err := c.Write(ctx, websocket.MessageText, f); err != nil {
					t.Fatalf("write %d bytes: %v", size, err)
				}
				_, data, err := c.Read(ctx)
				if want := fmt.Sprintf(`"id":"p%d"`, size); err != nil || !strings.Contains(string(data), `"pong"`) || !strings.Contains(string(data), want) {
					t.Fatalf("answer to %d bytes: %s, %v; want a pong with %s", size, data, err, want)
				}
			}
			_ = c.Write(ctx, websocket.MessageText, frame(maxFrame+1))
			_, _, err := c.Read(ctx)
			// gws closes a compressed frame that inflates past the bound
			// with 1011 "gws: message too large" (as on main before issue
			// 19), an uncompressed one with 1009.
			if want := websocket.StatusMessageTooBig; !compression && websocket.CloseStatus(err) != want || err == nil {
				t.Fatalf("frame over MaxFrameBytes: %v; want the connection closed (1009 uncompressed)", err)
			}
		})
	}
}
