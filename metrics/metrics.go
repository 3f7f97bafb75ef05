// Package metrics defines Natter's Prometheus metrics and the HTTP
// handlers every role serves next to them: /metrics, /healthz, /readyz.
// Hot-path metrics are plain counters and histograms created once (no
// label lookups per message); what the NATS server already knows —
// consumer lag, stream sizes, presence writes — is read from JetStream by
// collectors at scrape time.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Natter metric.
const Namespace = "natter"

// NewRegistry returns a registry with the Go runtime and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Probe answers 200 "ok" when check returns nil, else 503 with the error:
// the handler of /healthz and /readyz.
func Probe(check func(r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}
}
