package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/nats/natsrv"
)

// natter service add, ls, rotate and rm against a running natter serve:
// the credentials file is private, the running server takes each change
// at once, and a rotated or removed password stops working (its open
// connection too).
func TestServiceCommand(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, app.Config{
		Roles: app.Roles{Gateway: true}, HTTPAddr: "127.0.0.1:0",
		Embedded: natsrv.Config{Listen: "127.0.0.1:-1", DataDir: dir},
		Auth:     auth.Config{Secret: "test-secret"},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Shutdown(context.Background()) }()
	cmd := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(append([]string{"service"}, append(args, "--data", dir)...), &out, &errOut); err != nil {
			t.Fatalf("natter service %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	out := cmd("add", "alerts", "--as", "alert-bot,ops-bot")
	path := filepath.Join(dir, "nats-svc-alerts.url")
	if !strings.Contains(out, path) {
		t.Fatalf("add printed %q, not the path %s", out, path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, %v", fi, err)
	}
	url1 := readCreds(t, path)
	closed := make(chan struct{})
	nc, err := nats.Connect(url1, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatalf("the new service cannot connect: %v", err)
	}
	defer nc.Close()
	if ls := cmd("ls"); !strings.Contains(ls, "alerts") || !strings.Contains(ls, "alert-bot,ops-bot") || !strings.Contains(ls, "svc-alerts") {
		t.Fatalf("ls:\n%s", ls)
	}

	cmd("rotate", "alerts")
	url2 := readCreds(t, path)
	if url2 == url1 {
		t.Fatal("rotate kept the password")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("a connection with the rotated password stayed open")
	}
	if _, err := nats.Connect(url1, nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("the old password after rotate: %v", err)
	}
	nc2, err := nats.Connect(url2, nats.NoReconnect())
	if err != nil {
		t.Fatalf("the rotated password: %v", err)
	}
	nc2.Close()

	cmd("rm", "alerts")
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rm left the credentials file: %v", err)
	}
	if _, err := nats.Connect(url2, nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a removed service connected: %v", err)
	}
	if ls := cmd("ls"); strings.Contains(ls, "alerts") {
		t.Fatalf("ls after rm:\n%s", ls)
	}
	var errOut bytes.Buffer
	if err := run([]string{"service", "add", "Bad_Name", "--as", "x", "--data", dir}, io.Discard, &errOut); err == nil {
		t.Fatal("a bad service name was added")
	}
}

func readCreds(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
