package history_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/natter-chat/natter/history"
)

// An embedded store takes one writer per cluster: a second one, on
// another store, fails at Claim; a writer restarted on the same store
// takes the lease back; a released or expired lease is free again.
func TestWriterLease(t *testing.T) {
	e := newEnv(t)
	writer := func(name string) *history.Writer {
		return history.NewWriter(history.WriterConfig{SingleWriter: name, LeaseTTL: time.Second}, e.js, e.store)
	}
	a := writer("host-a:/data/history")
	if err := a.Claim(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	a1 := run(t, a)

	b := writer("host-b:/data/history")
	if err := b.Claim(ctxT(t)); !errors.Is(err, history.ErrWriterRunning) {
		t.Fatalf("second writer Claim = %v, want ErrWriterRunning", err)
	}
	if err := run(t, b).wait(t, 10*time.Second); !errors.Is(err, history.ErrWriterRunning) {
		t.Fatalf("second writer Run = %v, want ErrWriterRunning", err)
	}
	// A shared store's writers take no lease.
	if err := history.NewWriter(history.WriterConfig{}, e.js, e.store).Claim(ctxT(t)); err != nil {
		t.Fatalf("writer without SingleWriter: %v", err)
	}

	// Restarted on the same store (the old process died holding it).
	a2 := writer("host-a:/data/history")
	if err := a2.Claim(ctxT(t)); err != nil {
		t.Fatalf("same store takes over: %v", err)
	}
	run(t, a2)
	if err := a1.wait(t, 10*time.Second); !errors.Is(err, history.ErrLeaseLost) {
		t.Fatalf("the writer whose lease was taken over: Run = %v, want ErrLeaseLost", err)
	}
	time.Sleep(2 * time.Second) // a2 renews across its TTL
	if err := writer("host-b:/data/history").Claim(ctxT(t)); !errors.Is(err, history.ErrWriterRunning) {
		t.Fatalf("lease not kept alive by a running writer: Claim = %v", err)
	}
}

func TestWriterLeaseReleasedAndExpired(t *testing.T) {
	e := newEnv(t)
	writer := func(name string) *history.Writer {
		return history.NewWriter(history.WriterConfig{SingleWriter: name, LeaseTTL: time.Second}, e.js, e.store)
	}
	// A writer that stops releases the lease at once.
	r := run(t, writer("a"))
	time.Sleep(100 * time.Millisecond)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	b := writer("b")
	if err := b.Claim(ctxT(t)); err != nil {
		t.Fatalf("after a clean stop: %v", err)
	}
	// b dies without releasing (it never runs): its lease expires.
	c := writer("c")
	if err := c.Claim(ctxT(t)); !errors.Is(err, history.ErrWriterRunning) {
		t.Fatalf("Claim while b holds it = %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Claim(ctxT(t))
		if err == nil {
			break
		}
		if !errors.Is(err, history.ErrWriterRunning) || time.Now().After(deadline) {
			t.Fatalf("Claim after b died: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A writer stopped while it claims its lease (CI under load stopped one
// 100 ms after starting it, still in Claim) stopped cleanly: Run returns
// nil, as it does for any stop, not the claim's context error.
func TestWriterStoppedWhileClaiming(t *testing.T) {
	e := newEnv(t)
	w := history.NewWriter(history.WriterConfig{SingleWriter: "a", LeaseTTL: time.Second}, e.js, e.store)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatalf("Run stopped before it had its lease = %v, want nil", err)
	}
}
