package main

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-chat/natter/metrics"
	"github.com/natter-chat/natter/nats/natsrv"
)

// natsMux serves the probes and metrics of a `natter nats` node, with
// extra collectors (the node's CHAT trimmer). Ready means JetStream runs
// here and, in a cluster, the node sees a meta leader and is caught up
// with it.
func natsMux(srv *natsrv.Server, extra ...prometheus.Collector) http.Handler {
	ns := srv.Server()
	reg := metrics.NewRegistry()
	reg.MustRegister(extra...)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "nats_routes", Help: "Routes to other cluster nodes.",
	}, func() float64 { return float64(ns.NumRoutes()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "nats_client_connections", Help: "Client connections to this node.",
	}, func() float64 { return float64(ns.NumClients()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "nats_jetstream_current", Help: "1 when this node's JetStream is caught up with the meta leader.",
	}, func() float64 {
		if ns.JetStreamIsCurrent() {
			return 1
		}
		return 0
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	mux.HandleFunc("GET /healthz", metrics.Probe(func(*http.Request) error {
		if !ns.Running() {
			return errors.New("not running")
		}
		return nil
	}))
	mux.HandleFunc("GET /readyz", metrics.Probe(func(*http.Request) error {
		switch {
		case !ns.JetStreamEnabled():
			return errors.New("JetStream is not enabled")
		case ns.JetStreamIsClustered() && !ns.JetStreamIsCurrent():
			return errors.New("JetStream is not current with the meta leader")
		}
		return nil
	}))
	return mux
}
