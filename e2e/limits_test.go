package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// A client that never reads is cut off with 4008 while the others go on
// chatting, and the gateway's queue for it stays bounded.
func TestClientThatNeverReads(t *testing.T) {
	e := start(t, func(c *app.Config) { c.Gateway.MaxPendingBytes = 256 << 10 })
	// Up to 400 sends of 60 KiB, each read by bob: minutes on a loaded box.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, b := e.dial(t, "alice"), e.dial(t, "bob")
	g, err := a.CreateGroup(ctx, "busy", "bob", "sloth")
	if err != nil {
		t.Fatal(err)
	}
	// sloth connects with a raw socket and never reads a byte.
	sloth, _, err := websocket.Dial(ctx, e.app.WebSocketURL(), &websocket.DialOptions{HTTPHeader: map[string][]string{"Authorization": {"Bearer " + token(t, "sloth")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sloth.CloseNow()

	body := `{"text":"` + strings.Repeat("z", 60<<10) + `"}`
	closed := false
	for i := 0; i < 400 && !closed; i++ {
		if _, err := a.Send(ctx, g.Conv, "", rawJSON(body)); err != nil {
			// How many messages the kernel absorbs before the gateway's
			// queue for sloth fills varies; a fast sender may reach the
			// rate limit first, which is not what this test is about.
			var pe *protocol.Error
			if errors.As(err, &pe) && pe.Code == protocol.CodeRateLimited {
				time.Sleep(100 * time.Millisecond)
				i--
				continue
			}
			t.Fatalf("send %d: %v", i, err)
		}
		if m := nextMessage(t, b); m.Sender != "alice" {
			t.Fatalf("bob got %+v", m)
		}
		closed = e.app.Gateway().Connections() == 2
	}
	if !closed {
		t.Fatalf("the gateway still holds the non-reading connection after 400 × 60 KiB")
	}
	// Reading now, sloth finds the close code at the end of what was sent.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		_, _, err := sloth.Read(rctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != protocol.CloseSlowOrAbusive && st != -1 {
				t.Fatalf("close = %v, want 4008 or a cut connection", err)
			}
			break
		}
	}
	// Everyone else is fine.
	if _, err := b.Send(ctx, g.Conv, "", text("still here")); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, a); m.Sender != "bob" {
		t.Fatalf("alice got %+v", m)
	}
}

// A connection silent for two heartbeats is closed.
func TestSilentConnectionIsClosed(t *testing.T) {
	e := start(t, func(c *app.Config) { c.Gateway.Heartbeat = 500 * time.Millisecond })
	quiet := e.dialOpts(t, client.Options{Token: token(t, "quiet"), KeepAlive: -1})
	chatty := e.dial(t, "chatty")
	stop := time.Now().Add(2 * time.Second)
	for time.Now().Before(stop) {
		if err := chatty.Ping(ctxT(t)); err != nil {
			t.Fatalf("a connection that pings was closed: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case <-quiet.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a silent connection is still open after 2 s with heartbeat 0.5 s (1 s: whole seconds)")
	}
}

func TestConnectionLimits(t *testing.T) {
	e := start(t, func(c *app.Config) {
		c.Gateway.MaxConnsPerUser = 2
		c.Gateway.MaxConnsPerIP = 4
	})
	ctx := ctxT(t)
	e.dial(t, "alice")
	e.dial(t, "alice")
	_, err := client.Dial(ctx, e.app.WebSocketURL(), checked(t, client.Options{Token: token(t, "alice")}))
	if err == nil {
		t.Fatal("a third connection of a user limited to 2 was welcomed")
	}
	// The refused third connection counts against the address until the
	// server has closed it, which on a loaded machine may come after the
	// next dial: bob and carol wait for that, and a count that never
	// comes down fails them.
	for _, u := range []string{"bob", "carol"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := client.Dial(ctx, e.app.WebSocketURL(), checked(t, client.Options{Token: token(t, u)}))
			if err == nil {
				t.Cleanup(func() { _ = c.Close() })
				break
			}
			if !strings.Contains(err.Error(), "429") || time.Now().After(deadline) {
				t.Fatalf("dial %s: %v", u, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	_, err = client.Dial(ctx, e.app.WebSocketURL(), checked(t, client.Options{Token: token(t, "dave")}))
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("a fifth connection from one address limited to 4: %v, want HTTP 429", err)
	}
}

func TestOriginAllowList(t *testing.T) {
	e := start(t, func(c *app.Config) { c.Gateway.AllowedOrigins = []string{"https://chat.example.com"} })
	ctx := ctxT(t)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + e.app.HTTPAddr(), true},
		{"https://chat.example.com", true},
		{"https://evil.example.net", false},
		{"null", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, err := client.Dial(ctx, e.app.WebSocketURL(), checked(t, client.Options{Token: token(t, "alice"), Header: h}))
		if tc.ok != (err == nil) {
			t.Errorf("origin %q: %v, want allowed=%v", tc.origin, err, tc.ok)
		}
		if err == nil {
			_ = c.Close()
		} else if !strings.Contains(err.Error(), "403") {
			t.Errorf("origin %q refused with %v, want HTTP 403", tc.origin, err)
		}
	}
}

func TestMembershipLimits(t *testing.T) {
	e := start(t, func(c *app.Config) {
		c.Conversations.MaxMembers = 3
		c.Conversations.MaxConversations = 2
		c.Conversations.MaxAddBatch = 2
	})
	ctx := ctxT(t)
	a := e.dial(t, "alice")
	_, err := a.CreateGroup(ctx, "big", "b", "c", "d")
	wantCode(t, err, protocol.CodeTooLarge)
	g, err := a.CreateGroup(ctx, "small", "b")
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, a.AddMembers(ctx, g.Conv, "c", "d"), protocol.CodeTooLarge)
	wantCode(t, a.AddMembers(ctx, g.Conv, "c", "d", "e"), protocol.CodeBadRequest)
	if err := a.AddMembers(ctx, g.Conv, "c"); err != nil {
		t.Fatal(err)
	}
	// alice is in one conversation; one more is allowed, a third is not.
	if _, err := a.CreateDirect(ctx, "zed"); err != nil {
		t.Fatal(err)
	}
	_, err = a.CreateDirect(ctx, "yan")
	wantCode(t, err, protocol.CodeTooLarge)
	// The refused conversation left nothing behind for alice.
	list, err := a.Conversations(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("conversations = %d, %v", len(list), err)
	}
}
