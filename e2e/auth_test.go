package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

func TestAuthHeader(t *testing.T) {
	e := start(t)
	c := e.dialOpts(t, client.Options{Token: token(t, "alice"), HeaderAuth: true})
	if w := c.Welcome(); w.User != "alice" || w.Session == "" || w.Heartbeat != 20 {
		t.Fatalf("welcome = %+v", w)
	}
	expired, _ := auth.IssueHS256(secret, "alice", -time.Minute, time.Now())
	wrongKey, _ := auth.IssueHS256("another-secret", "alice", time.Hour, time.Now())
	for name, tok := range map[string]string{"expired": expired, "wrong key": wrongKey, "garbage": "x.y.z"} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+e.app.HTTPAddr()+"/v1/ws", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", resp.StatusCode)
			}
			_, err = client.Dial(ctxT(t), e.app.WebSocketURL(), checked(t, client.Options{Token: tok, HeaderAuth: true}))
			if !errors.Is(err, client.ErrUnauthorized) {
				t.Fatalf("Dial = %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestAuthHello(t *testing.T) {
	e := start(t, func(c *app.Config) { c.Gateway.HelloTimeout = 500 * time.Millisecond })
	c := e.dialOpts(t, client.Options{Token: token(t, "bob"), Device: "phone-1"})
	if w := c.Welcome(); w.User != "bob" {
		t.Fatalf("welcome = %+v", w)
	}
	// A later hello updates the device and gets welcome again.
	raw, err := c.Request(ctxT(t), protocol.Request{Type: protocol.TypeHello, Device: "tablet"})
	if err != nil || !contains(string(raw), `"type":"welcome"`) || !contains(string(raw), `"tablet"`) {
		t.Fatalf("second hello = %s, %v", raw, err)
	}

	expired, _ := auth.IssueHS256(secret, "bob", -time.Minute, time.Now())
	badSub, _ := auth.Issue([]byte(secret), jwtClaims("bob.smith", time.Hour))
	cases := []struct {
		name  string
		first string // the first frame; "" sends nothing
	}{
		{"bad token", `{"type":"hello","token":"x.y.z"}`},
		{"expired token", `{"type":"hello","token":"` + expired + `"}`},
		{"sub outside the charset", `{"type":"hello","token":"` + badSub + `"}`},
		{"no token", `{"type":"hello"}`},
		{"not hello", `{"type":"ping"}`},
		{"not json", `hello?`},
		{"silence", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			conn, _, err := websocket.Dial(ctx, e.app.WebSocketURL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			if tc.first != "" {
				if err := conn.Write(ctx, websocket.MessageText, []byte(tc.first)); err != nil {
					t.Fatal(err)
				}
			}
			_, data, err := conn.Read(ctx)
			if st := websocket.CloseStatus(err); st != protocol.CloseUnauthorized {
				t.Fatalf("read = %s, %v; want close %d", data, err, protocol.CloseUnauthorized)
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Reason == "" {
				t.Fatalf("close 4001 without a reason")
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestHealthz(t *testing.T) {
	e := start(t)
	resp, err := http.Get("http://" + e.app.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz = %d", resp.StatusCode)
	}
}

func TestShutdownClosesWith1001(t *testing.T) {
	e := start(t)
	c := e.dial(t, "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("client still connected after shutdown")
	}
	if st := c.CloseStatus(); st != 1001 {
		t.Fatalf("close status = %d (%v), want 1001", st, c.Err())
	}
}
