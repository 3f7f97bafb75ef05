package e2e

import (
	"sync"
	"testing"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol/spec"
)

// The wire check: every frame a test's client sends or receives is
// validated against protocol/spec, and every reply against the
// per-request table. A frame that fails fails the test.

var loadSpec = sync.OnceValues(spec.Load)

func wireSpec(t testing.TB) *spec.Spec {
	t.Helper()
	s, err := loadSpec()
	if err != nil {
		t.Fatalf("load protocol/spec: %v", err)
	}
	return s
}

// wireCheck follows one connection with a spec.Checker, not in order:
// the client's trace sees a request before it is written, and tests
// write from several goroutines. Frames are checked on a goroutine of
// their own, started while frames wait (none is left while the
// connection is quiet): validating a 1 MiB page takes long under -race,
// and a reader that slow would make the server wait on the socket.
type wireCheck struct {
	c *spec.Checker

	mu      sync.Mutex
	queue   []traced
	running bool // a drain goroutine runs
	over    bool
	drained sync.WaitGroup
}

type traced struct {
	sent  bool
	frame []byte
}

// newWireCheck returns a checker for one connection. It reports at t's
// cleanup, so call it before anything whose cleanup closes the
// connection (cleanups run last first): the connection is then closed
// before the report.
func newWireCheck(t testing.TB) *wireCheck {
	t.Helper()
	w := &wireCheck{c: wireSpec(t).NewChecker(false)}
	t.Cleanup(func() {
		w.mu.Lock()
		w.over = true
		w.mu.Unlock()
		w.drained.Wait()
		for _, p := range w.c.Problems() {
			t.Errorf("wire check: %s", p)
		}
	})
	return w
}

// trace is client.Options.Trace: it queues a copy of the frame.
func (w *wireCheck) trace(sent bool, frame []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.over {
		return
	}
	w.queue = append(w.queue, traced{sent: sent, frame: append([]byte(nil), frame...)})
	if !w.running {
		w.running = true
		w.drained.Add(1)
		go w.drain()
	}
}

// drain feeds the checker, in order, until the queue is empty.
func (w *wireCheck) drain() {
	defer w.drained.Done()
	for {
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		if len(batch) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		for _, f := range batch {
			if f.sent {
				w.c.Sent(f.frame)
			} else {
				w.c.Received(f.frame)
			}
		}
	}
}

// checkServerFrame validates one frame a test read from a raw socket.
func checkServerFrame(t testing.TB, frame []byte) {
	t.Helper()
	if _, err := wireSpec(t).Validate(spec.FromServer, frame); err != nil {
		t.Errorf("wire check: server frame %.400s: %v", frame, err)
	}
}

// checked returns opts with a wire check of its own as Trace, unless it
// has a Trace already.
func checked(t testing.TB, opts client.Options) client.Options {
	t.Helper()
	if opts.Trace == nil {
		opts.Trace = newWireCheck(t).trace
	}
	return opts
}
