package main

import (
	"io"
	"path/filepath"
	"testing"
)

// natter history deletes erased users' and expired messages' files, so in
// a split deployment it takes the gateways' attachment store from the same
// flags; given none, it has none (not a <data>/attachments of its own that
// holds nothing of the gateways').
func TestHistoryAttachmentFlags(t *testing.T) {
	data := t.TempDir()
	role := []string{"--nats-url", "nats://127.0.0.1:4222", "--data", data}
	cfg, err := serveConfig(role, io.Discard, "history")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Attachments.Dir != "" || cfg.Attachments.Store != nil {
		t.Fatalf("history without --attachments: %+v; want no store", cfg.Attachments)
	}
	shared := t.TempDir()
	cfg, err = serveConfig(append(role, "--attachments", "fs", "--attachments-dir", shared, "--attachment-quota", "1000"), io.Discard, "history")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Attachments.Dir != shared || cfg.Attachments.Service.Quota != 1000 {
		t.Fatalf("history --attachments fs --attachments-dir %s: %+v", shared, cfg.Attachments)
	}
	if _, err := serveConfig(append(role, "--attachments", "s3"), io.Discard, "history"); err == nil {
		t.Fatal("history --attachments s3 without --s3-endpoint was accepted")
	}
	// A gateway keeps its default: files under <data>/attachments.
	gw := append(role, "--jwt-secret", "0123456789abcdef0123456789abcdef")
	if cfg, err = serveConfig(gw, io.Discard, "gateway"); err != nil || cfg.Attachments.Dir != filepath.Join(data, "attachments") {
		t.Fatalf("gateway: %+v, %v", cfg.Attachments, err)
	}
	if cfg, err = serveConfig(append(gw, "--attachments", "off"), io.Discard, "gateway"); err != nil || cfg.Attachments.Dir != "" {
		t.Fatalf("gateway --attachments off: %+v, %v", cfg.Attachments, err)
	}
}

// natter serve runs the search indexer unless --search=false; the flag is
// serve's only (a split deployment runs natter indexer or not).
func TestServeSearchFlag(t *testing.T) {
	base := []string{"--data", t.TempDir(), "--dev"}
	cfg, err := serveConfig(base, io.Discard, "serve")
	if err != nil || !cfg.Roles.Indexer || cfg.Search.Dir == "" {
		t.Fatalf("serve: indexer %v, search dir %q, %v; want on", cfg.Roles.Indexer, cfg.Search.Dir, err)
	}
	cfg, err = serveConfig(append(base, "--search=false"), io.Discard, "serve")
	if err != nil || cfg.Roles.Indexer || cfg.Search.Dir != "" || !cfg.Roles.Gateway || !cfg.Roles.History {
		t.Fatalf("serve --search=false: %+v, search dir %q, %v; want every role but the indexer", cfg.Roles, cfg.Search.Dir, err)
	}
	if _, err := serveConfig([]string{"--nats-url", "nats://127.0.0.1:4222", "--search=false"}, io.Discard, "history"); err == nil {
		t.Fatal("natter history accepted --search")
	}
}
