package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// EventHandler handles one event. Nil acknowledges it; an error leaves it
// to come again after a pause (and, meanwhile, the next ones).
type EventHandler func(ctx context.Context, ev *protocol.ServiceEvent) error

// Events pulls the service's events (docs/bots.md) from its durable
// consumer, svc-<name> on SVC_EVENTS, and hands them to h one at a time,
// in order, until ctx ends; then it returns nil. The consumer keeps the
// position across restarts: an event h did not acknowledge comes again.
// Its user may read that one consumer and nothing else.
func (c *Client) Events(ctx context.Context, h EventHandler) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			if cons, err = js.Consumer(ctx, schema.StreamServiceEvents, schema.ServiceEventsConsumerName(c.name)); err != nil {
				if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
					// The operator's processes make it when the
					// service is added; it may be a moment behind.
					cons = nil
					pause(ctx, time.Second)
					continue
				}
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("service: events consumer: %w", err)
			}
		}
		batch, err := cons.Fetch(64, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("service: fetch events: %w", err)
		}
		for msg := range batch.Messages() {
			if ctx.Err() != nil {
				_ = msg.Nak()
				continue
			}
			var ev protocol.ServiceEvent
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				_ = msg.Term() // not an event: it would never decode
				continue
			}
			if err := h(ctx, &ev); err != nil {
				_ = msg.NakWithDelay(time.Second)
				continue
			}
			_ = msg.Ack()
		}
	}
	return nil
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
