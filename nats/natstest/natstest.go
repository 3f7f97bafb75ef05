// Package natstest starts the embedded NATS server of package natsrv for
// tests: a real JetStream server on a temporary data directory, with
// in-process connections and a goroutine-leak check.
package natstest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
)

// shutdownTimeout bounds the server shutdown run by the cleanup.
const shutdownTimeout = 30 * time.Second

// Start starts an embedded server on tb.TempDir() with a random loopback
// port; its warnings and errors go to tb.Log. The server is shut down by
// tb.Cleanup.
func Start(tb testing.TB) *natsrv.Server {
	tb.Helper()
	return StartStreams(tb, 0)
}

// StartStreams is Start with the subject mapping of streams partition
// streams (natsrv.Config.Streams).
func StartStreams(tb testing.TB, streams int) *natsrv.Server {
	tb.Helper()
	w := &tbWriter{tb: tb}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsrv.Start(ctx, natsrv.Config{
		Listen:  "127.0.0.1:-1",
		DataDir: tb.TempDir(),
		Logger:  log,
		Streams: streams,
	})
	if err != nil {
		tb.Fatalf("natstest: start NATS server: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			tb.Errorf("natstest: shut down NATS server: %v", err)
		}
		w.close()
	})
	return s
}

// Connect opens an in-process connection to s as the internal user and a
// JetStream context on it; the connection is closed by tb.Cleanup.
func Connect(tb testing.TB, s *natsrv.Server) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := s.Connect(tb.Name())
	if err != nil {
		tb.Fatalf("natstest: connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// tbWriter sends each slog record to tb.Log until closed: testing panics
// on a Log after the test has completed.
type tbWriter struct {
	mu     sync.Mutex
	tb     testing.TB
	closed bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.tb.Log("nats: " + strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
