package history

import (
	"context"
	"log/slog"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Disappearing messages (docs/protocol.md "Disappearing messages"). An
// item with expires_at is gone at that time everywhere, whoever removes
// it when: the CHAT stream removes it by its Nats-TTL (rounded up to
// the second, so at or just after expires_at), Cassandra by USING TTL
// (rounded up too), the embedded store by the writer's sweep
// (Expirer). Between expires_at and those removals the Reader and the
// Stream hide it themselves, by expires_at, so every request agrees at
// once: none returns an expired item, and one the stream still holds
// but the store already dropped is not a row the store lacks (which
// would look like loss and make the Reader page from the stream).
//
// Neither is an expired seq a gap to a client: pages chain prev over the
// items that are there (chainPrev), so the item after an expired one has
// the one before it as prev, and a client that held the expired item
// drops it at expires_at on its own (client.Expired).

// live reports whether env has not expired by now().
func live(env *protocol.Envelope, now func() time.Time) bool {
	return env.ExpiresAt == "" || !env.Expired(now())
}

// Expirer is a Store that removes expired rows only when asked (the
// embedded store; Cassandra expires rows itself, USING TTL). The history
// writer calls Expire every WriterConfig.ExpireEvery while it runs.
type Expirer interface {
	// Expire deletes every row expired by now and returns how many.
	Expire(ctx context.Context, now time.Time) (int, error)
}

// sweep calls Expire on store every interval until ctx ends.
func sweep(ctx context.Context, store Expirer, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := store.Expire(ctx, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("history expiry sweep failed", "err", err)
		} else if n > 0 {
			log.Debug("history expiry sweep", "rows", n)
		}
	}
}

// startSweep starts the expiry sweep of w's store, if it is an Expirer,
// and returns a function that stops it and waits for it.
func (w *Writer) startSweep(ctx context.Context) func() {
	ex, ok := w.store.(Expirer)
	if !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sweep(ctx, ex, w.cfg.ExpireEvery, w.cfg.Logger)
	}()
	return func() { cancel(); <-done }
}
