package e2e

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
)

// An idle connection kept alive by WebSocket pings alone stays open long
// past the write timeout: the pongs must not run into the deadline the
// last push (here the welcome) left on the socket.
func TestWebSocketPingsKeepIdleConnectionOpen(t *testing.T) {
	e := start(t, func(c *app.Config) {
		c.Gateway.Heartbeat = time.Second
		c.Gateway.WriteTimeout = 300 * time.Millisecond
	})
	idle := e.dialOpts(t, client.Options{Token: token(t, "idle"), KeepAlive: 200 * time.Millisecond})
	select {
	case <-idle.Done():
		t.Fatalf("an idle connection that pings was closed: %v", idle.Err())
	case <-time.After(3 * time.Second):
	}
	if err := idle.Ping(ctxT(t)); err != nil {
		t.Fatalf("ping after 3 s idle: %v", err)
	}
}
