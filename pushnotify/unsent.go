package pushnotify

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/pinned"
	"github.com/natter-chat/natter/nats/schema"
)

// Unsent keeps the pushnotify consumer current while no provider is
// configured: it acknowledges every message as it comes, reading nothing
// else and sending nothing, so `nats consumer report CHAT` shows no
// growing backlog, and a provider configured later notifies only what is
// stored from then on instead of every message of the hot window.
//
// It holds the consumer's pin like a Dispatcher: one running next to a
// Dispatcher would take the messages it is given, so every process of a
// cluster that reads pushnotify needs the same providers.
type Unsent struct {
	js  jetstream.JetStream
	log *slog.Logger
	n   atomic.Uint64
}

// NewUnsent returns an Unsent reading the pushnotify consumer through js;
// log nil means slog.Default().
func NewUnsent(js jetstream.JetStream, log *slog.Logger) *Unsent {
	if log == nil {
		log = slog.Default()
	}
	return &Unsent{js: js, log: log}
}

// Run acknowledges the consumer's messages until ctx ends.
func (u *Unsent) Run(ctx context.Context) error {
	u.log.Info("Push notifications are off: no provider is configured, so the pushnotify consumer's messages are acknowledged unsent.",
		"consumer", schema.ConsumerPush)
	l, err := schema.ReadLayout(ctx, u.js)
	if err != nil {
		return err
	}
	return pinned.RunStreams(ctx, u.js, pinned.Config{
		Consumer: schema.ConsumerPush, Group: schema.PriorityGroupPush,
		MaxMessages: 1024, Logger: u.log,
	}, l.ChatStreams(), func(ctx context.Context, msg jetstream.Msg) error {
		if err := msg.Ack(); err != nil {
			return err
		}
		u.n.Add(1)
		return nil
	})
}

// Acked is how many messages Run acknowledged unsent.
func (u *Unsent) Acked() uint64 { return u.n.Load() }
