package main

import (
	"errors"
	"net/http"

	"github.com/nats-io/nats-server/v2/server"
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
	// Routes count connections, not nodes: a healthy 3-node cluster has
	// several per peer, so "one node down" shows in the peers seen, not in
	// the route count.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "nats_cluster_peers_connected", Help: "Other cluster nodes this node has a route to (distinct servers, not routes).",
	}, func() float64 { return float64(peersConnected(ns)) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "nats_cluster_size", Help: "Nodes of the JetStream cluster as the meta group knows it (1 for a single node).",
	}, func() float64 { return float64(clusterSize(ns)) }))
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

// peersConnected is how many distinct servers ns has routes to.
func peersConnected(ns *server.Server) int {
	rz, err := ns.Routez(nil)
	if err != nil {
		return 0
	}
	seen := map[string]bool{}
	for _, r := range rz.Routes {
		seen[r.RemoteID] = true
	}
	return len(seen)
}

// clusterSize is the JetStream meta group's size, 1 when not clustered.
func clusterSize(ns *server.Server) int {
	if !ns.JetStreamIsClustered() {
		return 1
	}
	jsz, err := ns.Jsz(nil)
	if err != nil || jsz.Meta == nil || jsz.Meta.Size == 0 {
		return 1
	}
	return jsz.Meta.Size
}
