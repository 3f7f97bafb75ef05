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
	consumers, streams := a.observed()
	a.obs.reg.MustRegister(metrics.NewJetStream(js, schema.StreamChat, consumers, streams))
	return nil
}

// observed lists the CHAT consumers and the streams whose state /metrics
// reports: all of them in a process with the embedded server, else those
// of the roles this process runs, which are all its NATS user may look up.
func (a *App) observed() (consumers, streams []string) {
	if a.nats != nil {
		return []string{schema.ConsumerFanout, schema.ConsumerHistory, schema.ConsumerPush},
			[]string{schema.StreamChat, schema.KVStream(schema.BucketPresence)}
	}
	for _, role := range a.natsRoles() {
		switch role {
		case schema.RoleGateway:
			consumers, streams = append(consumers, schema.ConsumerFanout), append(streams, schema.StreamChat)
		case schema.RoleHistory:
			consumers, streams = append(consumers, schema.ConsumerHistory), append(streams, schema.StreamChat)
		case schema.RolePush:
			consumers, streams = append(consumers, schema.ConsumerPush), append(streams, schema.StreamChat)
		case schema.RolePresence:
			streams = append(streams, schema.KVStream(schema.BucketPresence))
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
		PublishRetries: g.PublishRetries, PushesDropped: g.PushesDropped, NoticesDropped: g.NoticesDropped,
		MemberViewReads: g.MemberViewReads, StaleViews: g.StaleViews, BusyViews: g.BusyViews}
}

// pushMetrics publishes the dispatcher's outcome counters.
func pushMetrics(d *pushnotify.Dispatcher) prometheus.Collector {
	return metrics.NewCounterSnapshot("push_total", "Push notification outcomes by provider.",
		"provider", "outcome", d.Counters, func(c pushnotify.Counter) (string, string) { return c.Provider, c.Outcome })
}

func (a *App) readyz(r *http.Request) error {
	if !a.ready.Load() {
		return errors.New("starting or shutting down")
	}
	for _, nc := range a.conns {
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
