package main

import (
	"io"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

func TestTrustedProxiesFlag(t *testing.T) {
	base := []string{"--data", t.TempDir(), "--dev"}
	cfg, err := serveConfig(append(base, "--trusted-proxies", "10.0.0.0/8,192.168.1.7", "--client-ip-header", "X-Real-IP"), io.Discard, "serve")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Gateway.TrustedProxies; len(got) != 2 || got[0].String() != "10.0.0.0/8" || got[1].String() != "192.168.1.7/32" {
		t.Fatalf("trusted proxies %v", got)
	}
	if cfg.Gateway.ClientIPHeader != "X-Real-IP" {
		t.Fatalf("client IP header %q", cfg.Gateway.ClientIPHeader)
	}
	cfg, err = serveConfig(base, io.Discard, "serve")
	if err != nil || len(cfg.Gateway.TrustedProxies) != 0 {
		t.Fatalf("default: %v, %v; want no trusted proxy", cfg.Gateway.TrustedProxies, err)
	}
	if _, err := serveConfig(append(base, "--trusted-proxies", "10.0.0.0/99"), io.Discard, "serve"); err == nil {
		t.Fatal("a bad prefix was accepted")
	}
}

func TestDevTokenTTLFlag(t *testing.T) {
	cfg, err := serveConfig([]string{"--data", t.TempDir(), "--dev", "--dev-token-ttl", "90s"}, io.Discard, "serve")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.DevTokens("alice")
	if err != nil {
		t.Fatal(err)
	}
	exp, ok := client.TokenExpiry(tok)
	if left := time.Until(exp); !ok || left > 90*time.Second || left < 85*time.Second {
		t.Fatalf("dev token expires in %v, want 90 s", left)
	}
	if _, err := serveConfig([]string{"--data", t.TempDir(), "--dev", "--dev-token-ttl", "0s"}, io.Discard, "serve"); err == nil {
		t.Fatal("--dev-token-ttl 0s was accepted")
	}
}
