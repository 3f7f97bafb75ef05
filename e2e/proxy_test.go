package e2e

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
)

// TestPerIPLimitBehindProxies checks whose address the per-IP connection
// limit counts: a forwarding header from a peer that is not a trusted
// proxy changes nothing, and a trusted proxy's header names the client,
// right-most untrusted hop first.
func TestPerIPLimitBehindProxies(t *testing.T) {
	dialXFF := func(e *env, user, xff string) error {
		c, err := client.Dial(ctxT(t), e.app.WebSocketURL(), client.Options{Token: token(t, user),
			Header: http.Header{"X-Forwarded-For": {xff}}})
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
		return err
	}
	want429 := func(err error, what string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "429") {
			t.Fatalf("%s: %v, want HTTP 429", what, err)
		}
	}

	t.Run("untrusted peer", func(t *testing.T) {
		e := start(t, func(c *app.Config) { c.Gateway.MaxConnsPerIP = 1 })
		if err := dialXFF(e, "alice", "198.51.100.1"); err != nil {
			t.Fatal(err)
		}
		want429(dialXFF(e, "bob", "198.51.100.2"), "a spoofed X-Forwarded-For from an untrusted peer")
	})

	t.Run("trusted proxy", func(t *testing.T) {
		e := start(t, func(c *app.Config) {
			c.Gateway.MaxConnsPerIP = 1
			c.Gateway.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		for i, xff := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3, 127.0.0.9"} {
			if err := dialXFF(e, []string{"alice", "bob", "carol"}[i], xff); err != nil {
				t.Fatalf("client %s behind the trusted proxy: %v", xff, err)
			}
		}
		want429(dialXFF(e, "dave", "198.51.100.1"), "a second connection of 198.51.100.1")
		// A client cannot escape its address by writing hops of its own
		// left of what the proxy appended.
		want429(dialXFF(e, "erin", "203.0.113.50, 198.51.100.2"), "a client prepending a made-up hop")
	})
}
