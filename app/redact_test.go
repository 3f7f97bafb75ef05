package app

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// syncBuffer is a log sink the App's goroutines may write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNATSPasswordNeverLogged runs an App against an external NATS named
// by a credentialed URL list, logging at debug level, and checks that the
// password appears nowhere in what it logged from start to shutdown.
func TestNATSPasswordNeverLogged(t *testing.T) {
	srv := natstest.Start(t)
	if _, js := natstest.Connect(t, srv); schema.Ensure(t.Context(), js, schema.Config{}) != nil {
		t.Fatal("the operator could not create the schema")
	}
	operatorURL := srv.OperatorURL()
	_, pass, _ := strings.Cut(strings.TrimPrefix(operatorURL, "nats://"), ":")
	pass, _, _ = strings.Cut(pass, "@")
	if len(pass) < 16 {
		t.Fatalf("no password in %q", operatorURL)
	}
	var logs syncBuffer
	cfg := testConfig(t, Roles{Gateway: true, Presence: true})
	cfg.NATSURL = operatorURL + "," + operatorURL
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "natter is ready") || !strings.Contains(out, "operator:xxxxx@") {
		t.Fatalf("the ready line with the redacted URL is missing:\n%s", out)
	}
	if strings.Contains(out, pass) {
		t.Fatalf("the NATS password is in the log:\n%s", out)
	}
}
