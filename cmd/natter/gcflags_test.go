package main

import (
	"io"
	"testing"
)

// A `natter gateway` process collects at GOGC=50 unless told otherwise
// (issue 19: memory per idle connection); serve keeps the runtime's
// target unless --gc-percent is given; GOGC in the environment wins, and
// processes without a gateway never set one.
func TestGCPercentFlag(t *testing.T) {
	t.Setenv("GOGC", "")
	base := []string{"--data", t.TempDir(), "--dev"}
	cfg, err := serveConfig(base, io.Discard, "serve")
	if err != nil || cfg.GCPercent != 0 {
		t.Fatalf("serve: GC percent %d, %v; want 0 (the runtime's)", cfg.GCPercent, err)
	}
	if cfg, err = serveConfig(append(base, "--gc-percent", "80"), io.Discard, "serve"); err != nil || cfg.GCPercent != 80 {
		t.Fatalf("serve --gc-percent 80: %d, %v", cfg.GCPercent, err)
	}
	if _, err := serveConfig(append(base, "--gc-percent", "-1"), io.Discard, "serve"); err == nil {
		t.Fatal("--gc-percent -1 was accepted")
	}
	role := []string{"--nats-url", "nats://127.0.0.1:4222", "--jwt-secret", "0123456789abcdef0123456789abcdef"}
	if cfg, err = serveConfig(role, io.Discard, "gateway"); err != nil || cfg.GCPercent != 0 {
		t.Fatalf("gateway: %d, %v; want 0 (the runtime's until its latency cost is measured)", cfg.GCPercent, err)
	}
	if cfg, err = serveConfig(append(role, "--gc-percent", "50"), io.Discard, "gateway"); err != nil || cfg.GCPercent != 50 {
		t.Fatalf("gateway --gc-percent 50: %d, %v; want 50", cfg.GCPercent, err)
	}
	if cfg, err = serveConfig(append(role, "--gc-percent", "0"), io.Discard, "gateway"); err != nil || cfg.GCPercent != 0 {
		t.Fatalf("gateway --gc-percent 0: %d, %v; want 0", cfg.GCPercent, err)
	}
	if cfg, err = serveConfig(append(role, "--gc-percent", "50"), io.Discard, "presence"); err != nil || cfg.GCPercent != 0 {
		t.Fatalf("presence: %d, %v; want 0 (no gateway)", cfg.GCPercent, err)
	}
	t.Setenv("GOGC", "200")
	if cfg, err = serveConfig(role, io.Discard, "gateway"); err != nil || cfg.GCPercent != 0 {
		t.Fatalf("gateway with GOGC=200: %d, %v; want 0 (GOGC wins)", cfg.GCPercent, err)
	}
}
