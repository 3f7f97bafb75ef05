package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
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

// wireCheck follows one connection. A frame the schema refuses is fine
// to send (tests send malformed input on purpose), but then its answer
// must be an error: a frame the server accepts must be one the spec
// allows, or the two disagree.
type wireCheck struct {
	t    testing.TB
	spec *spec.Spec

	mu       sync.Mutex
	sent     map[string]sentFrame // by id, until answered
	problems []string
	over     bool
}

type sentFrame struct {
	typ     string
	invalid error // why the schema refuses it; nil when valid
}

// newWireCheck returns a checker for one connection. It reports at t's
// cleanup, so call it before anything whose cleanup closes the
// connection (cleanups run last first): the connection is then closed
// before the report.
func newWireCheck(t testing.TB) *wireCheck {
	t.Helper()
	w := &wireCheck{t: t, spec: wireSpec(t), sent: map[string]sentFrame{}}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.over = true
		for _, p := range w.problems {
			t.Errorf("wire check: %s", p)
		}
	})
	return w
}

func (w *wireCheck) problem(format string, args ...any) {
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
}

// trace is client.Options.Trace.
func (w *wireCheck) trace(sent bool, frame []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.over {
		return
	}
	if sent {
		f, err := w.spec.Validate(spec.FromClient, frame)
		if f.ID != "" {
			w.sent[f.ID] = sentFrame{typ: f.Type, invalid: err}
		}
		return
	}
	w.received(frame)
}

func (w *wireCheck) received(frame []byte) {
	f, err := w.spec.Validate(spec.FromServer, frame)
	if err != nil {
		w.problem("server frame %.400s: %v", frame, err)
		return
	}
	if f.ID == "" {
		return
	}
	req, ok := w.sent[f.ID]
	if !ok {
		return
	}
	delete(w.sent, f.ID)
	if req.invalid != nil {
		if f.Type != protocol.TypeError {
			w.problem("the server answered %.400s to a %q frame the spec refuses (%v)", frame, req.typ, req.invalid)
		}
		return
	}
	row := w.spec.Requests[req.typ]
	switch f.Type {
	case row.Reply:
	case protocol.TypeError:
		var e protocol.Error
		_ = json.Unmarshal(frame, &e)
		if !slices.Contains(row.Errors, e.Code) {
			w.problem("%q answered with error code %q, which frames.json does not list for it (%v): %.400s", req.typ, e.Code, row.Errors, frame)
		}
	default:
		w.problem("%q answered with %q, frames.json says %q: %.400s", req.typ, f.Type, row.Reply, frame)
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
