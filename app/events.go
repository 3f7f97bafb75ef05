package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// connection of the events role. The services' consumers it reads are the
// operator's (syncServiceConsumers).
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
	run := func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, f := range []func(context.Context) error{w.Run, d.Run} {
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

// syncServiceConsumers keeps the consumers of the services on SVC_EVENTS
// equal to the registry (schema.EnsureServiceConsumers), with the
// operator's connection js: a role may not create consumers. The operator's
// processes run it next to syncServiceUsers, so that `natter service add`
// gives a service its user and its consumer together. A failed update is
// tried again every few seconds until it succeeds or ctx ends.
func syncServiceConsumers(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	changed := make(chan map[string]time.Time, 1)
	onChange := func(all []services.Service) {
		since := make(map[string]time.Time, len(all))
		for _, s := range all {
			since[s.Name] = s.Created
		}
		select { // only the latest matters
		case <-changed:
		default:
		}
		changed <- since
	}
	watch := func() *services.Index {
		for ctx.Err() == nil {
			idx, err := services.Watch(ctx, js, services.WatchConfig{Logger: log, OnChange: onChange})
			if err == nil {
				return idx
			}
			log.Warn("Watching the service registry failed; retrying.", "err", err)
			if !sleepCtx(ctx, 2*time.Second) {
				break
			}
		}
		return nil
	}
	idx := watch()
	if idx == nil {
		return nil
	}
	var pending map[string]time.Time
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-idx.Done():
			if idx = watch(); idx == nil {
				return nil
			}
			continue
		case pending = <-changed:
		case <-retry.C:
			if pending == nil {
				continue
			}
		}
		if err := ensureServiceConsumers(ctx, js, pending); err != nil {
			log.Warn("Updating the services' event consumers failed; retrying.", "err", err)
			continue
		}
		pending = nil
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func ensureServiceConsumers(ctx context.Context, js jetstream.JetStream, since map[string]time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return schema.EnsureServiceConsumers(ctx, js, since)
}
