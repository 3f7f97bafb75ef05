package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/natter-chat/natter/pushnotify/webpush"
)

func TestWebPushAllowHostsFlag(t *testing.T) {
	parse := func(args ...string) ([]string, error) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		build := pushFlags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		pc, err := build()
		return pc.WebPushEndpoints.AllowHosts, err
	}
	if got, err := parse(); err != nil || !slices.Equal(got, webpush.DefaultAllowHosts) {
		t.Errorf("default: %v, %v; want %v", got, err, webpush.DefaultAllowHosts)
	}
	if got, err := parse("--webpush-allow-hosts", " push.example.com, *.push.example.net ,"); err != nil || !slices.Equal(got, []string{"push.example.com", "*.push.example.net"}) {
		t.Errorf("list: %v, %v", got, err)
	}
	if got, err := parse("--webpush-allow-hosts", "*"); err != nil || !slices.Equal(got, []string{webpush.AnyPublicHost}) {
		t.Errorf("any: %v, %v", got, err)
	}
	for _, bad := range []string{"", " , ", "https://push.example.com", "*.", "a*b.example"} {
		if _, err := parse("--webpush-allow-hosts", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// `natter pushnotify` needs a provider, or --no-provider for a cluster
// without push notifications (it then keeps the consumer acknowledged);
// --no-provider with a provider is a contradiction, and serve has no such
// flag (it keeps the consumer acknowledged by itself).
func TestNoProviderFlag(t *testing.T) {
	role := []string{"--nats-url", "nats://127.0.0.1:4222"}
	if _, err := serveConfig(role, io.Discard, "pushnotify"); err == nil || !strings.Contains(err.Error(), "--no-provider") {
		t.Fatalf("pushnotify without a provider: %v, want an error naming --no-provider", err)
	}
	cfg, err := serveConfig(append(role, "--no-provider"), io.Discard, "pushnotify")
	if err != nil || !cfg.Roles.Push || cfg.Push.Configured() {
		t.Fatalf("pushnotify --no-provider: push role %v, configured %v, %v", cfg.Roles.Push, cfg.Push.Configured(), err)
	}
	key := filepath.Join(t.TempDir(), "vapid.key")
	if err := os.WriteFile(key, []byte("AAAA"), 0o600); err != nil {
		t.Fatal(err)
	}
	withProvider := append(role, "--webpush-vapid-key-file", key, "--webpush-subject", "mailto:ops@example.com", "--no-provider")
	if _, err := serveConfig(withProvider, io.Discard, "pushnotify"); err == nil || !strings.Contains(err.Error(), "contradicts") {
		t.Fatalf("--no-provider with a provider: %v, want a contradiction", err)
	}
	if _, err := serveConfig([]string{"--data", t.TempDir(), "--dev", "--no-provider"}, io.Discard, "serve"); err == nil {
		t.Fatal("serve accepted --no-provider")
	}
}
