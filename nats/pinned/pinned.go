// Package pinned runs one handler on a durable JetStream consumer whose
// priority policy is pinned_client. Every process may run a worker on the
// same consumer: the server hands messages to one of them at a time and
// moves the pin to another when that one stops pulling (after the
// consumer's PinnedTTL). One worker at a time, each handling its messages
// one after the other, is what keeps stream order for the fan-out and the
// push dispatcher. The consumers themselves are declared in nats/schema.
package pinned

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Config names the consumer a worker reads.
type Config struct {
	// Stream and Consumer name the durable pull consumer.
	Stream, Consumer string
	// Group is the consumer's pinned priority group.
	Group string
	// MaxMessages is how many messages are pulled ahead of the handler
	// (default 256).
	MaxMessages int
	// Logger; slog.Default by default.
	Logger *slog.Logger
}

// Handler takes one message and acks, naks or terms it. Calls are serial,
// in the order the server delivered the messages; ctx is Run's.
type Handler func(ctx context.Context, msg jetstream.Msg)

// Run hands the consumer's messages to h until ctx ends. Then it stops
// pulling and returns once h no longer runs; messages pulled ahead but not
// handled are left unacknowledged and are redelivered to the next pinned
// worker. It returns an error only when it could not start consuming.
func Run(ctx context.Context, js jetstream.JetStream, cfg Config, h Handler) error {
	if cfg.Stream == "" || cfg.Consumer == "" || cfg.Group == "" {
		return ErrConfig
	}
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cons, err := js.Consumer(ctx, cfg.Stream, cfg.Consumer)
	if err != nil {
		return fmt.Errorf("pinned: consumer %s: %w", cfg.Consumer, err)
	}
	if c := cons.CachedInfo().Config; c.PriorityPolicy != jetstream.PriorityPolicyPinned || !slices.Contains(c.PriorityGroups, cfg.Group) {
		return fmt.Errorf("%w: %s, group %s", ErrNotPinned, cfg.Consumer, cfg.Group)
	}
	var handlers sync.WaitGroup
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		handlers.Add(1)
		defer handlers.Done()
		h(ctx, msg)
	},
		jetstream.PullPriorityGroup(cfg.Group),
		jetstream.PullMaxMessages(cfg.MaxMessages),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// Missed heartbeats are routine while the server or the
			// connection fails over; the consumer retries by itself.
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				cfg.Logger.Debug("pinned consume error", "consumer", cfg.Consumer, "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("pinned: consume %s: %w", cfg.Consumer, err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	handlers.Wait()
	return nil
}
