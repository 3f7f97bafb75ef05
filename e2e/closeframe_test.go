package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
)

// TestServerClosesWithCloseFrame checks that a close the server starts
// reaches the client as a close frame with a code and a reason, also when
// the connection was quiet for longer than the write timeout: the idle
// close (at the default settings, two heartbeats are 40 s and the write
// timeout 10 s) and gws's own close of a frame too large. Before, both
// ended in a bare TCP EOF, because the close frame was written on the
// write deadline the last reply had set, long past.
func TestServerClosesWithCloseFrame(t *testing.T) {
	e := start(t, func(c *app.Config) {
		c.Gateway.Heartbeat = time.Second
		c.Gateway.WriteTimeout = 300 * time.Millisecond
		c.Gateway.MaxFrameBytes = 64 << 10
	})
	t.Run("idle", func(t *testing.T) {
		c := e.dialOpts(t, client.Options{Token: token(t, "idler"), KeepAlive: -1})
		if got := waitClosed(t, c, 10*time.Second); got != 1000 {
			t.Fatalf("idle close: code %d (%v), want a close frame with 1000", got, c.Err())
		}
		if r := c.CloseReason(); !strings.HasPrefix(r, "idle") {
			t.Fatalf("idle close reason %q, want it to say idle", r)
		}
	})
	t.Run("too large after a quiet while", func(t *testing.T) {
		c := e.dialOpts(t, client.Options{Token: token(t, "big"), KeepAlive: -1})
		// Quiet past the write deadline welcome set, within two heartbeats.
		time.Sleep(800 * time.Millisecond)
		_, _ = c.Request(ctxT(t), map[string]any{"type": "ping", "pad": strings.Repeat("x", 100<<10)})
		if got := waitClosed(t, c, 10*time.Second); got != 1009 {
			t.Fatalf("close of a frame too large: code %d (%v), want a close frame with 1009", got, c.Err())
		}
	})
}
