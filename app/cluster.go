package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// ensureSchema runs schema.Ensure, retrying while a JetStream cluster is
// still electing its meta leader or the stream's leader (a role started
// together with the NATS nodes, or during a failover), until ctx ends.
func ensureSchema(ctx context.Context, js jetstream.JetStream, cfg schema.Config, log *slog.Logger) error {
	wait := 100 * time.Millisecond
	for {
		err := ensureOnce(ctx, js, cfg)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		log.Warn("schema not ensured yet; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// ensureOnce resolves Replicas 0 with schema.AutoReplicas and ensures.
func ensureOnce(ctx context.Context, js jetstream.JetStream, cfg schema.Config) error {
	if cfg.Replicas <= 0 {
		r, err := schema.AutoReplicas(ctx, js)
		if err != nil {
			return err
		}
		cfg.Replicas = r
	}
	return schema.Ensure(ctx, js, cfg)
}

// transient reports whether a JetStream API error is expected to pass
// once the cluster has leaders again.
func transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) && (api.Code == 503 || api.Code == 500 || api.Code == 408) {
		return true
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrConnectionReconnecting)
}
