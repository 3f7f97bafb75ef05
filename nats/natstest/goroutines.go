package natstest

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// leakWait is how long the check waits for goroutines to finish; a
// variable so this package's tests can shorten it.
var leakWait = 5 * time.Second

// CheckGoroutines snapshots the running goroutines and returns a function
// that fails tb if goroutines started since are still running after up to
// 5 s. Goroutines created by package testing (other tests) and by the
// runtime's signal handling are ignored, so run it in tests that are not
// parallel with tests starting goroutines of their own. Register the
// result with tb.Cleanup before starting servers, so it runs after their
// cleanups:
//
//	t.Cleanup(natstest.CheckGoroutines(t))
//	s := natstest.Start(t)
//
// The returned function is safe to call more than once; it checks once.
func CheckGoroutines(tb testing.TB) func() {
	tb.Helper()
	before := make(map[string]bool)
	for _, g := range goroutines() {
		before[g.id] = true
	}
	var once sync.Once
	return func() {
		tb.Helper()
		once.Do(func() {
			var leaked []goroutine
			for deadline := time.Now().Add(leakWait); ; time.Sleep(20 * time.Millisecond) {
				leaked = leaked[:0]
				for _, g := range goroutines() {
					if !before[g.id] && !g.ignored() {
						leaked = append(leaked, g)
					}
				}
				if len(leaked) == 0 || time.Now().After(deadline) {
					break
				}
			}
			if len(leaked) == 0 {
				return
			}
			var b strings.Builder
			for _, g := range leaked {
				b.WriteString("\n\n")
				b.WriteString(g.stack)
			}
			tb.Errorf("natstest: %d goroutine(s) leaked after %s:%s", len(leaked), leakWait, b.String())
		})
	}
}

// goroutine is one entry of a runtime.Stack dump.
type goroutine struct {
	id    string // the number after "goroutine "
	stack string
}

// ignoredStacks mark goroutines that are not leaks of the code under test.
var ignoredStacks = []string{
	"created by testing.",         // other tests and subtests, the test timer
	"created by os/signal.Notify", // signal.loop, lives for the process
	"os/signal.signal_recv",
	"runtime.ensureSigM",
}

func (g goroutine) ignored() bool {
	for _, s := range ignoredStacks {
		if strings.Contains(g.stack, s) {
			return true
		}
	}
	return false
}

// goroutines returns every goroutine but the caller's.
func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for i, block := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // the calling goroutine comes first
		}
		stack := string(bytes.TrimSpace(block))
		header, _, _ := strings.Cut(stack, "\n")
		rest, ok := strings.CutPrefix(header, "goroutine ")
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(rest, " ")
		out = append(out, goroutine{id: id, stack: stack})
	}
	return out
}
