package natstest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestStartConnect(t *testing.T) {
	t.Cleanup(CheckGoroutines(t))
	s := Start(t)
	nc, js := Connect(t, s)
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "s.x", []byte("x"))
	if err != nil || ack.Sequence != 1 {
		t.Fatalf("Publish = %+v, %v", ack, err)
	}
}

// recordTB records Errorf instead of failing the test.
type recordTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestCheckGoroutines(t *testing.T) {
	defer func(d time.Duration) { leakWait = d }(leakWait)
	leakWait = 300 * time.Millisecond

	tests := []struct {
		name     string
		runFor   time.Duration // how long the started goroutine runs; 0: none started
		wantLeak bool
	}{
		{"none", 0, false},
		{"settles", 50 * time.Millisecond, false},
		{"leak", time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordTB{TB: t}
			check := CheckGoroutines(rec)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if tt.runFor > 0 {
				wg.Go(func() { leakyWorker(stop, tt.runFor) })
			}
			check()
			check() // checks once
			close(stop)
			wg.Wait()
			want := 0
			if tt.wantLeak {
				want = 1
			}
			if len(rec.errors) != want {
				t.Fatalf("%d errors, want %d: %v", len(rec.errors), want, rec.errors)
			}
			if tt.wantLeak && !strings.Contains(rec.errors[0], "leakyWorker") {
				t.Errorf("error does not show the leaked stack: %s", rec.errors[0])
			}
		})
	}
}

// leakyWorker runs for d or until stop is closed.
func leakyWorker(stop <-chan struct{}, d time.Duration) {
	select {
	case <-stop:
	case <-time.After(d):
	}
}
