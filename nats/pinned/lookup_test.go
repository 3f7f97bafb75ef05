package pinned_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/pinned"
)

// leaderlessJS answers the first fails consumer lookups as a stream with
// no leader does: no answer before the deadline.
type leaderlessJS struct {
	jetstream.JetStream
	fails atomic.Int32
}

func (j *leaderlessJS) Consumer(ctx context.Context, stream, name string) (jetstream.Consumer, error) {
	if j.fails.Add(-1) >= 0 {
		return nil, context.DeadlineExceeded
	}
	return j.JetStream.Consumer(ctx, stream, name)
}

// RunBatches that starts while its stream's leader is being elected waits
// for it instead of failing: the history writer, which starts its loops
// again each time it gets its lease back, stopped for good when one
// partition stream had no leader then (TestHistoryWriterSurvivesStreamLeaderKill
// with NATTER_CHAOS_STREAMS=4). A consumer that does not exist still fails
// at once.
func TestRunBatchesWaitsForALeaderlessConsumer(t *testing.T) {
	js := &leaderlessJS{JetStream: setup(t, jetstream.PriorityPolicyPinned, time.Minute)}
	js.fails.Store(2)
	publish(t, js, 0, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []int
	five := make(chan struct{})
	cfg := pinned.BatchConfig{Stream: stream, Consumer: consumer, Group: group, Batch: 10, Wait: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error, 1)
	go func() {
		done <- pinned.RunBatches(ctx, js, cfg, func(_ context.Context, batch []jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				n, _ := strconv.Atoi(string(m.Data()))
				got = append(got, n)
			}
			if len(got) == 5 {
				close(five)
			}
			return nil
		})
	}()
	select {
	case <-five:
	case err := <-done:
		t.Fatalf("RunBatches stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("nothing handled in 20 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunBatches: %v", err)
	}
	cfg.Consumer = "none"
	if err := pinned.RunBatches(context.Background(), js, cfg, nil); err == nil {
		t.Fatal("RunBatches of a consumer that does not exist: no error")
	}
}
