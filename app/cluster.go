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
// natter nats, natter migrate --nats-url) run schema.Ensure with their
// flags; a role against an external NATS only checks that what it uses
// exists (schema.Check), so a role started with a smaller --hot-window or
// other flags never changes CHAT, and its NATS user may not either.

// ensureSchema runs schema.Ensure, retrying while a JetStream cluster is
// still electing its meta leader or the stream's leader (a role started
// together with the NATS nodes, or during a failover), until ctx ends.
// newReplicas is the replica count of a schema made from scratch when
// cfg.Replicas is 0 (0: schema.AutoReplicas decides).
//
// Each attempt has ensureAttempt: a cluster that has just elected its meta
// leader may leave a stream create unanswered, and one attempt on all of
// ctx then waited it out (a 3-node e2e start hung 2 minutes on "ensure
// stream CHAT_0" although the cluster was up). Without a deadline of its
// own each JetStream request has nats.go's 5 s; an attempt's deadline
// replaces that, so it is kept short: a lost answer costs one attempt,
// and the next one goes on from what the last created.
func ensureSchema(ctx context.Context, js jetstream.JetStream, cfg schema.Config, newReplicas int, log *slog.Logger) error {
	return ensureWith(ctx, js, cfg, newReplicas, log, schema.Ensure)
}

// ensureWith is ensureSchema applying the schema with apply.
func ensureWith(ctx context.Context, js jetstream.JetStream, cfg schema.Config, newReplicas int, log *slog.Logger,
	apply func(context.Context, jetstream.JetStream, schema.Config) error) error {
	wait := 100 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		err := ensureOnce(actx, js, cfg, newReplicas, apply)
		cancel()
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

// ensureAttempt bounds one attempt of ensureSchema (a variable for tests).
var ensureAttempt = 10 * time.Second

// awaitSchema is a role's start against an external NATS: it looks up
// what roles use (schema.Check), creating nothing, and while something is
// missing or JetStream has no leader yet it waits for the operator's
// processes, saying which step that is, for at most wait (0: two
// minutes). Then it fails with the same words, and the orchestrator
// restarts it.
func awaitSchema(ctx context.Context, js jetstream.JetStream, roles []string, wait time.Duration, log *slog.Logger) error {
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	retry := 100 * time.Millisecond
	var missing error // the last lookup that found something missing
	gaveUp := func(err error) error {
		if missing != nil {
			err = missing // says what is missing and who creates it
		}
		return fmt.Errorf("the NATS schema is still incomplete after %v: %w", time.Since(start).Round(time.Second), err)
	}
	for attempt := 1; ; attempt++ {
		err := schema.Check(ctx, js, roles...)
		if err == nil {
			return nil
		}
		if errors.Is(err, schema.ErrMissing) {
			missing = err
		} else if !transient(err) {
			return fmt.Errorf("check the NATS schema as %v: %w", roles, err)
		}
		if ctx.Err() != nil {
			return gaveUp(err)
		}
		if attempt >= 3 || errors.Is(err, schema.ErrMissing) {
			log.Warn("the NATS schema is incomplete and a role never creates it; waiting for the operator", "err", err, "retry_in", retry)
		}
		select {
		case <-ctx.Done():
			return gaveUp(err)
		case <-time.After(retry):
		}
		retry = min(2*retry, 5*time.Second)
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
			if _, err := schema.ReadLayout(ctx, js); errors.Is(err, jetstream.ErrStreamNotFound) {
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

// MigrateConfig is what MigrateNATS needs: the operator's NATS URL (a
// comma-separated list is the nodes of a cluster) and the schema's size.
type MigrateConfig struct {
	URL string
	// RootCA is a PEM file of the CA of a tls:// URL, when the system
	// roots do not cover it.
	RootCA string
	Schema schema.Config
	Logger *slog.Logger
}

// MigrateNATS creates or updates the NATS schema (schema.Ensure) on an
// external NATS that natter nats does not run, with the operator's user:
// the operator step a role never takes. It retries while JetStream has no
// leader, until ctx ends.
func MigrateNATS(ctx context.Context, cfg MigrateConfig) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// A role's user may not: say so at once rather than time out.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	opts := []nats.Option{nats.Name("natter-migrate"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			cancel(fmt.Errorf("this NATS user may not change the schema; use the operator's URL (<data>/nats.url): %w", err))
		}
	})}
	if cfg.RootCA != "" {
		opts = append(opts, nats.RootCAs(cfg.RootCA))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := ensureSchema(ctx, js, cfg.Schema, 0, cfg.Logger); err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, ctx.Err()) {
			return cause
		}
		return err
	}
	return nil
}
