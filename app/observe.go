package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/metrics"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/pushnotify"
)

// observer is an App's Prometheus registry and readiness check.
type observer struct {
	reg *prometheus.Registry
	js  jetstream.JetStream
}

// observe serves /metrics and /readyz on mux. Ready means every NATS
// connection of the App is connected and JetStream answers. Roles register
// their own metrics on a.obs.reg once their parts exist.
func (a *App) observe(ctx context.Context, mux *http.ServeMux) error {
	_, js, err := a.connect(ctx, "natter-metrics")
	if err != nil {
		return err
	}
	a.obs = &observer{reg: metrics.NewRegistry(), js: js}
	a.obs.reg.MustRegister(metrics.NewJetStream(js, schema.StreamChat,
		[]string{schema.ConsumerFanout, schema.ConsumerHistory, schema.ConsumerPush},
		[]string{schema.StreamChat, schema.KVStream(schema.BucketPresence)}))
	mux.Handle("GET /metrics", metrics.Handler(a.obs.reg))
	mux.HandleFunc("GET /readyz", metrics.Probe(a.readyz))
	return nil
}

// gatewayMetrics are the gateway's hooks, registered on the App's registry.
func (a *App) gatewayMetrics() gateway.Metrics {
	g := metrics.NewGateway(a.obs.reg)
	return gateway.Metrics{FramesIn: g.FramesIn, FramesOut: g.FramesOut, SendAck: g.SendAck, PublishErrors: g.PublishErrors}
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
