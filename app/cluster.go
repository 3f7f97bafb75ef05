package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// Who may change the schema: the processes that hold the operator's
// credentials and own the stream settings (natter serve's embedded server,
// natter nats) run schema.Ensure with their flags; a role against an
// external NATS only creates what is missing (schema.CreateMissing), so a
// role started with a smaller --hot-window or other flags never changes
// CHAT.

// ensureSchema runs schema.Ensure, retrying while a JetStream cluster is
// still electing its meta leader or the stream's leader (a role started
// together with the NATS nodes, or during a failover), until ctx ends.
// newReplicas is the replica count of a schema made from scratch when
// cfg.Replicas is 0 (0: schema.AutoReplicas decides).
func ensureSchema(ctx context.Context, js jetstream.JetStream, cfg schema.Config, newReplicas int, log *slog.Logger) error {
	wait := 100 * time.Millisecond
	for {
		err := ensureOnce(ctx, js, cfg, newReplicas, schema.Ensure)
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

// awaitSchema is a role's start against an external NATS: it creates the
// streams, buckets and consumers that are missing, if its user may, and
// otherwise waits until the operator's processes have, saying which
// command that is, until ctx ends.
func awaitSchema(ctx context.Context, js jetstream.JetStream, cfg schema.Config, log *slog.Logger) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := ensureOnce(ctx, js, cfg, 0, schema.CreateMissing)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if attempt >= 3 || !transient(err) {
			log.Warn("the NATS schema is incomplete and this role cannot create it; waiting for the operator's processes to: "+
				"start the `natter nats` nodes (each ensures the schema once the cluster has a leader), or run `natter serve`",
				"err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the NATS schema: %w", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// ensureOnce resolves Replicas 0 (the existing CHAT stream's, else
// newReplicas, else schema.AutoReplicas) and runs apply.
func ensureOnce(ctx context.Context, js jetstream.JetStream, cfg schema.Config, newReplicas int,
	apply func(context.Context, jetstream.JetStream, schema.Config) error) error {
	if cfg.Replicas <= 0 {
		r, err := schema.AutoReplicas(ctx, js)
		if err != nil {
			return err
		}
		cfg.Replicas = r
		if newReplicas > 0 {
			if _, err := js.Stream(ctx, schema.StreamChat); errors.Is(err, jetstream.ErrStreamNotFound) {
				cfg.Replicas = newReplicas
			}
		}
	}
	return apply(ctx, js, cfg)
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
