package app

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// A schema request the cluster drops unanswered costs one attempt, not
// the whole start: the next attempt, on a deadline of its own, succeeds
// (a 3-node e2e start hung 2 minutes on "ensure stream CHAT_0").
func TestEnsureSchemaRetriesAnAttemptLeftUnanswered(t *testing.T) {
	old := ensureAttempt
	ensureAttempt = 200 * time.Millisecond
	t.Cleanup(func() { ensureAttempt = old })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls := 0
	apply := func(ctx context.Context, _ jetstream.JetStream, _ schema.Config) error {
		calls++
		if calls == 1 {
			<-ctx.Done() // dropped: no answer until the attempt's deadline
			return ctx.Err()
		}
		return nil
	}
	began := time.Now()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := ensureWith(ctx, nil, schema.Config{Replicas: 3}, 0, log, apply); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || time.Since(began) > 5*time.Second {
		t.Fatalf("%d attempts in %v", calls, time.Since(began))
	}
}
