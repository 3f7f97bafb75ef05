package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/services"
	"github.com/natter-chat/natter/services/events"
	"github.com/natter-chat/natter/services/webhook"
)

// EventsConfig tunes the events role: the events writer and the webhook
// dispatcher (docs/bots.md).
type EventsConfig struct {
	Writer  events.Config
	Webhook webhook.Config
}

// startEvents runs the events writer and the webhook dispatcher on a NATS
// connection of the events role. With the embedded server this process is
// also the operator: it keeps each service's consumer on SVC_EVENTS in
// step with the registry (schema.EnsureServiceConsumers).
func (a *App) startEvents(ctx context.Context, _ *http.ServeMux) (*part, error) {
	_, js, err := a.connect(ctx, schema.RoleEvents, "natter-events")
	if err != nil {
		return nil, err
	}
	convs, err := a.conversations(ctx, js)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	idx, err := services.Watch(wctx, js, services.WatchConfig{Logger: a.log})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("events: %w", err)
	}
	ecfg := a.cfg.Events
	if ecfg.Writer.Logger == nil {
		ecfg.Writer.Logger = a.log
	}
	if ecfg.Webhook.Logger == nil {
		ecfg.Webhook.Logger = a.log
	}
	w := events.New(ecfg.Writer, js, convs, idx)
	d, err := webhook.New(ecfg.Webhook, js, idx)
	if err != nil {
		cancel()
		return nil, err
	}
	var reconcile func(ctx context.Context) error
	if a.nats != nil {
		if reconcile, err = a.serviceConsumers(ctx, wctx); err != nil {
			cancel()
			return nil, err
		}
	}
	run := func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i, f := range []func(context.Context) error{w.Run, d.Run, reconcile} {
			if f == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = f(ctx)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	return &part{name: "events", run: run, close: func() error { cancel(); <-idx.Done(); return nil }}, nil
}

// serviceConsumers returns the operator's loop that creates the consumer
// of each added service and deletes those of removed ones, on the App's
// own (operator) connection: a role may not create consumers.
func (a *App) serviceConsumers(ctx, wctx context.Context) (func(context.Context) error, error) {
	_, js, err := a.connect(ctx, "", "natter-service-consumers")
	if err != nil {
		return nil, err
	}
	changed := make(chan map[string]time.Time, 1)
	_, err = services.Watch(wctx, js, services.WatchConfig{Logger: a.log, OnChange: func(all []services.Service) {
		since := make(map[string]time.Time, len(all))
		for _, s := range all {
			since[s.Name] = s.Created
		}
		select { // keep only the latest
		case <-changed:
		default:
		}
		changed <- since
	}})
	if err != nil {
		return nil, fmt.Errorf("service consumers: %w", err)
	}
	return func(ctx context.Context) error {
		var pending map[string]time.Time
		retry := time.NewTicker(5 * time.Second)
		defer retry.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case pending = <-changed:
			case <-retry.C:
				if pending == nil {
					continue
				}
			}
			if err := ensureServiceConsumers(ctx, js, pending); err != nil {
				a.log.Warn("Could not update the services' event consumers; trying again.", "err", err)
				continue
			}
			pending = nil
		}
	}, nil
}

func ensureServiceConsumers(ctx context.Context, js jetstream.JetStream, since map[string]time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return schema.EnsureServiceConsumers(ctx, js, since)
}
