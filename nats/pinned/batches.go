package pinned

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchConfig names the consumer RunBatches reads.
type BatchConfig struct {
	// Stream and Consumer name the durable pull consumer; Group is its
	// pinned priority group.
	Stream, Consumer, Group string
	// Batch is the most messages one fetch takes: at most the consumer's
	// MaxAckPending, so that after a crash the batch is redelivered
	// before anything newer.
	Batch int
	// Wait is how long one fetch waits for messages (default 1 s).
	Wait time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
}

// BatchHandler takes one fetched batch, in delivery order. Nil means
// done: RunBatches acks every message of it. An error while RunBatches'
// context is live stops RunBatches with that error, the batch left as the
// handler left it (nak'd, or unacked for an operator to look at); an
// error once the context ended (the handler gave up) sends the batch back
// at once (nak) to whichever worker pulls next, and RunBatches returns
// nil. It retries transient failures itself.
type BatchHandler func(ctx context.Context, batch []jetstream.Msg) error

// RunBatches is the loop of the workers that handle a consumer batch by
// batch and ack a batch only once it is done (the history writer, the
// search indexer): fetch up to Batch messages, hand them to h, ack them,
// the last one synchronously so the next fetch cannot overtake the acks
// of this batch. A fetch that fails (a consumer leader changing) is tried
// again after Wait. It runs until ctx ends (nil) or h fails (h's error).
func RunBatches(ctx context.Context, js jetstream.JetStream, cfg BatchConfig, h BatchHandler) error {
	if cfg.Stream == "" || cfg.Consumer == "" || cfg.Group == "" || cfg.Batch <= 0 {
		return ErrConfig
	}
	if cfg.Wait <= 0 {
		cfg.Wait = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cons, err := lookUp(ctx, js, cfg)
	if err != nil {
		return fmt.Errorf("%s consumer: %w", cfg.Consumer, err)
	}
	var got []jetstream.Msg
	for ctx.Err() == nil {
		batch, err := cons.Fetch(cfg.Batch, jetstream.FetchMaxWait(cfg.Wait), jetstream.FetchPriorityGroup(cfg.Group))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			cfg.Logger.Warn("consumer fetch failed", "consumer", cfg.Consumer, "err", err)
			sleep(ctx, cfg.Wait)
			continue
		}
		got = got[:0]
		for m := range batch.Messages() {
			got = append(got, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			cfg.Logger.Debug("consumer fetch ended early", "consumer", cfg.Consumer, "err", err)
		}
		if len(got) == 0 {
			continue
		}
		if err := h(ctx, got); err != nil {
			if ctx.Err() == nil {
				return err
			}
			for _, m := range got {
				_ = m.Nak()
			}
			return nil
		}
		for _, m := range got[:len(got)-1] {
			_ = m.Ack()
		}
		if err := got[len(got)-1].DoubleAck(ctx); err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("consumer ack failed; the batch will be handled again", "consumer", cfg.Consumer, "err", err)
		}
	}
	return nil
}

// lookUp finds cfg's consumer, trying again after cfg.Wait while the
// lookup fails for a while (no answer: the stream's leader is being
// elected, its node was killed) and ctx is live; a consumer or stream that
// does not exist is no reason to wait. The history writer looks its
// consumers up again each time it gets its lease back, which may be while
// a partition stream has no leader: one failed lookup stopped it for good
// (TestHistoryWriterSurvivesStreamLeaderKill with NATTER_CHAOS_STREAMS=4).
func lookUp(ctx context.Context, js jetstream.JetStream, cfg BatchConfig) (jetstream.Consumer, error) {
	for {
		cons, err := js.Consumer(ctx, cfg.Stream, cfg.Consumer)
		if err == nil || ctx.Err() != nil || errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return cons, err
		}
		cfg.Logger.Warn("consumer lookup failed; retrying", "stream", cfg.Stream, "consumer", cfg.Consumer, "err", err, "in", cfg.Wait)
		if !sleep(ctx, cfg.Wait) {
			return nil, err
		}
	}
}

// RunBatchesStreams is RunBatches of the consumer cfg names (cfg.Stream is
// ignored) on each of streams at once, one loop per stream (a consumer of
// every message stream, schema.Layout), with the handler h gives for that
// stream. The first loop that fails stops the others; it returns once all
// have stopped, with their errors.
func RunBatchesStreams(ctx context.Context, js jetstream.JetStream, cfg BatchConfig, streams []string, h func(stream string) BatchHandler) error {
	if len(streams) == 1 {
		cfg.Stream = streams[0]
		return RunBatches(ctx, js, cfg, h(streams[0]))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, name := range streams {
		c := cfg
		c.Stream = name
		wg.Go(func() {
			if errs[i] = RunBatches(ctx, js, c, h(name)); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
