package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/metrics"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
)

// observer is an App's Prometheus registry and readiness check, and the
// operator listener that serves them.
type observer struct {
	reg  *prometheus.Registry
	js   jetstream.JetStream
	http *http.Server // nil when Config.MetricsAddr is empty
	ln   net.Listener
}

// observe opens the registry and the readiness check. Ready means every
// NATS connection of the App is connected and JetStream answers. Roles
// register their own metrics on a.obs.reg once their parts exist.
func (a *App) observe(ctx context.Context) error {
	_, js, err := a.connect(ctx, "", "natter-metrics")
	if err != nil {
		return err
	}
	a.obs = &observer{reg: metrics.NewRegistry(), js: js}
	// The schema is there by now (ensured or awaited); a layout that cannot
	// be read leaves the partitions' consumers out of /metrics. Only a
	// process that watches a consumer of the message streams reads it:
	// another's NATS user may not look at them.
	l := schema.Layout{Streams: 1}
	roles := a.natsRoles()
	if a.nats != nil || slices.ContainsFunc(roles, func(r string) bool {
		return r == schema.RoleGateway || r == schema.RoleHistory || r == schema.RolePush || r == schema.RoleEvents
	}) {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, _ = schema.ReadLayout(lctx, js)
		cancel()
	}
	consumers, streams := a.observed(l)
	a.obs.reg.MustRegister(metrics.NewJetStream(js, consumers, streams), a.natsStats)
	if a.store != nil {
		a.storeStats.Store(metrics.NewStore(a.obs.reg))
	}
	return nil
}

// observed lists the consumers of the message streams and the streams
// whose state /metrics reports: all of them in a process with the embedded
// server, else those of the roles this process runs, which are all its
// NATS user may look up. The fan-out's are one per partition of l, and on
// CHAT the one of what was stored before partitions; every other consumer
// has one per message stream of l (schema.Layout).
func (a *App) observed(l schema.Layout) (consumers []metrics.Consumer, streams []string) {
	chat := l.ChatStreams()
	var fanout []metrics.Consumer
	if !l.Split() {
		fanout = append(fanout, metrics.Consumer{Stream: schema.StreamChat, Name: schema.ConsumerFanout})
	}
	for p, name := range l.FanoutConsumers() {
		fanout = append(fanout, metrics.Consumer{Stream: l.StreamOfPartition(p), Name: name})
	}
	each := func(name string) []metrics.Consumer {
		var out []metrics.Consumer
		for _, s := range chat {
			out = append(out, metrics.Consumer{Stream: s, Name: name})
		}
		return out
	}
	if a.nats != nil {
		return slices.Concat(fanout, each(schema.ConsumerHistory), each(schema.ConsumerPush), each(schema.ConsumerServiceEvents)),
			append(slices.Clone(chat), schema.KVStream(schema.BucketPresence), schema.StreamDead, schema.StreamPushDead,
				schema.StreamServiceEvents, schema.StreamWebhookDead)
	}
	for _, role := range a.natsRoles() {
		switch role {
		case schema.RoleGateway:
			consumers, streams = append(consumers, fanout...), append(streams, chat...)
		case schema.RoleHistory:
			consumers, streams = append(consumers, each(schema.ConsumerHistory)...), append(append(streams, chat...), schema.StreamDead)
		case schema.RolePush:
			consumers, streams = append(consumers, each(schema.ConsumerPush)...), append(append(streams, chat...), schema.StreamPushDead)
		case schema.RolePresence:
			streams = append(streams, schema.KVStream(schema.BucketPresence))
		case schema.RoleEvents:
			consumers = append(consumers, each(schema.ConsumerServiceEvents)...)
			streams = append(append(streams, chat...), schema.StreamServiceEvents, schema.StreamWebhookDead)
		}
	}
	slices.Sort(streams)
	return consumers, slices.Compact(streams)
}

// serveMetrics serves /metrics, /readyz and /healthz on MetricsAddr, a
// listener of its own: metrics name internals (consumer lag, connection
// counts) and readiness is for the orchestrator, neither for clients, so
// they stay off the client port. Without MetricsAddr nothing listens.
func (a *App) serveMetrics() error {
	if a.cfg.MetricsAddr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(a.obs.reg))
	mux.HandleFunc("GET /readyz", metrics.Probe(a.readyz))
	mux.HandleFunc("GET /healthz", a.healthz)
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.MetricsAddr, err)
	}
	a.obs.ln = ln
	a.obs.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.obs.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// shutdownMetrics stops the metrics listener, if any.
func (a *App) shutdownMetrics(ctx context.Context) error {
	if a.obs == nil || a.obs.http == nil {
		return nil
	}
	return a.obs.http.Shutdown(ctx)
}

// MetricsAddr is the address /metrics and /readyz listen on, "" when off.
func (a *App) MetricsAddr() string {
	if a.obs == nil || a.obs.ln == nil {
		return ""
	}
	return a.obs.ln.Addr().String()
}

// gatewayMetrics are the gateway's hooks, registered on the App's registry.
func (a *App) gatewayMetrics() gateway.Metrics {
	g := metrics.NewGateway(a.obs.reg)
	return gateway.Metrics{FramesIn: g.FramesIn, FramesOut: g.FramesOut, SocketWrites: g.SocketWrites, SendAck: g.SendAck, PublishErrors: g.PublishErrors,
		PublishRetries: g.PublishRetries, ResendLookups: g.ResendLookups, PushesDropped: g.PushesDropped, NoticesDropped: g.NoticesDropped,
		Closes: metrics.NewCodes(a.obs.reg, "gateway", "closes_total", "Connections the gateway closed, by WebSocket close code.", "code",
			1001, 1002, 1008, 1009, 1011, protocol.CloseUnauthorized, protocol.CloseTokenExpired, protocol.CloseSlowOrAbusive),
		Refused: metrics.NewReasons(a.obs.reg, "gateway", "refused_total", "Work the gateway refused: requests over the rate limit (rate), upgrades over the per-address limit (conns_per_ip), connections over the per-user limit (conns_per_user).", "reason",
			gateway.RefusedRate, gateway.RefusedConnsPerIP, gateway.RefusedConnsPerUser),
		MemberViewReads: g.MemberViewReads, StaleViews: g.StaleViews, BusyViews: g.BusyViews}
}

// pushMetrics publishes the dispatcher's outcome counters. Every outcome
// of every configured provider is exported from the start, at 0, so the
// push panels and alerts have a series before the first notification.
func pushMetrics(d *pushnotify.Dispatcher, providers []string) prometheus.Collector {
	outcomes := []string{pushnotify.OutcomeSent, pushnotify.OutcomeInvalidToken, pushnotify.OutcomeDeadLetter,
		pushnotify.OutcomeDuplicate, pushnotify.OutcomeRequeued}
	read := func() map[pushnotify.Counter]uint64 {
		m := d.Counters()
		for _, p := range providers {
			for _, o := range outcomes {
				if _, ok := m[pushnotify.Counter{Provider: p, Outcome: o}]; !ok {
					m[pushnotify.Counter{Provider: p, Outcome: o}] = 0
				}
			}
		}
		return m
	}
	return metrics.NewCounterSnapshot("push_total", "Push notification outcomes by provider.",
		"provider", "outcome", read, func(c pushnotify.Counter) (string, string) { return c.Provider, c.Outcome })
}

func (a *App) readyz(r *http.Request) error {
	if !a.ready.Load() {
		return errors.New("starting or shutting down")
	}
	for _, nc := range a.natsConns() {
		if !nc.IsConnected() {
			return fmt.Errorf("NATS connection %s is %s", nc.Opts.Name, nc.Status())
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := a.obs.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	return nil
}
