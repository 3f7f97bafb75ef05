package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// shortToken signs a token for user that expires within ttl (exp has
// whole seconds, so between ttl-1s and ttl from now) and returns its exp.
func shortToken(t testing.TB, user string, ttl time.Duration) (string, time.Time) {
	t.Helper()
	tok, err := auth.IssueHS256(secret, user, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	exp, ok := client.TokenExpiry(tok)
	if !ok {
		t.Fatalf("no exp in %s", tok)
	}
	return tok, exp
}

// waitClosed waits for c to end and returns its close code.
func waitClosed(t testing.TB, c *client.Client, within time.Duration) int {
	t.Helper()
	select {
	case <-c.Done():
		return c.CloseStatus()
	case <-time.After(within):
		t.Fatalf("connection still open after %v", within)
		return 0
	}
}

// TestTokenExpiryCloses4003 checks that a connection ends with 4003 when
// its token expires, whether it authenticated with hello or the
// Authorization header, and not before.
func TestTokenExpiryCloses4003(t *testing.T) {
	e := start(t)
	for _, header := range []bool{false, true} {
		tok, exp := shortToken(t, "alice", 2*time.Second)
		c := e.dialOpts(t, client.Options{Token: tok, HeaderAuth: header, KeepAlive: 200 * time.Millisecond})
		if got := waitClosed(t, c, time.Until(exp)+5*time.Second); got != protocol.CloseTokenExpired {
			t.Fatalf("header auth %v: closed with %d (%v), want 4003", header, got, c.Err())
		}
		if early := time.Until(exp); early > 100*time.Millisecond {
			t.Fatalf("header auth %v: closed %v before the token's exp", header, early)
		}
	}
}

// TestReauthKeepsConnection checks that a fresh token sent in reauth
// keeps a connection open past the first token's expiry, and that a bad
// token or another user's token is refused without changing anything.
func TestReauthKeepsConnection(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	tok, exp := shortToken(t, "alice", 2*time.Second)
	c := e.dialOpts(t, client.Options{Token: tok, KeepAlive: 200 * time.Millisecond})

	wantCode(t, c.Reauth(ctx, "not.a.token"), protocol.CodeUnauthorized)
	expired, err := auth.IssueHS256(secret, "alice", time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Reauth(ctx, expired), protocol.CodeUnauthorized)
	wantCode(t, c.Reauth(ctx, token(t, "mallory")), protocol.CodeForbidden)
	if err := c.Reauth(ctx, token(t, "alice")); err != nil {
		t.Fatalf("reauth with a fresh token: %v", err)
	}
	time.Sleep(time.Until(exp) + time.Second)
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("after the first token's exp: %v (close %d)", err, c.CloseStatus())
	}
	if w := c.Welcome(); w.User != "alice" {
		t.Fatalf("user %q", w.User)
	}

	// Another user's token does not extend anything: bob's connection
	// still ends at his own token's exp.
	btok, bexp := shortToken(t, "bob", 2*time.Second)
	b := e.dialOpts(t, client.Options{Token: btok, KeepAlive: 200 * time.Millisecond})
	wantCode(t, b.Reauth(ctx, token(t, "alice")), protocol.CodeForbidden)
	if got := waitClosed(t, b, time.Until(bexp)+5*time.Second); got != protocol.CloseTokenExpired {
		t.Fatalf("bob closed with %d, want 4003", got)
	}
}

// TestSessionRefreshesToken checks that a Session with a TokenSource stays
// on one connection across several short-lived tokens.
func TestSessionRefreshesToken(t *testing.T) {
	e := start(t)
	var issued atomic.Int32
	s, err := client.NewSession(ctxT(t), client.SessionOptions{
		URLs:    []string{e.app.WebSocketURL()},
		Options: client.Options{KeepAlive: 200 * time.Millisecond},
		TokenSource: func(context.Context) (string, error) {
			issued.Add(1)
			tok, _ := shortToken(t, "alice", 3*time.Second)
			return tok, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bob := e.dial(t, "bob")
	conv, err := bob.CreateDirect(ctxT(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	if _, err := s.Send(ctxT(t), conv.Conv, "", text("still here")); err != nil {
		t.Fatal(err)
	}
	if n := s.Connects(); n != 1 {
		t.Fatalf("%d connections in 6 s of 3 s tokens, want 1 (refreshed in place)", n)
	}
	if n := issued.Load(); n < 3 {
		t.Fatalf("%d tokens issued in 6 s of 3 s tokens", n)
	}
}
