package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// NATSConns reports, at scrape time, each NATS connection of a process:
// whether it is connected, how often it reconnected, and how many slow
// consumer events its subscriptions had (NATS dropped messages for a
// subscriber that did not keep up). The connection name is the label.
type NATSConns struct {
	conns func() []*nats.Conn

	mu   sync.Mutex
	slow map[string]*atomic.Uint64

	connected, reconnects, slowDesc *prometheus.Desc
}

var _ prometheus.Collector = (*NATSConns)(nil)

// NewNATSConns returns the collector; conns lists the connections at
// scrape time.
func NewNATSConns(conns func() []*nats.Conn) *NATSConns {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "nats_conn", name), help, []string{"conn"}, nil)
	}
	return &NATSConns{conns: conns, slow: map[string]*atomic.Uint64{},
		connected:  d("connected", "1 while the process's NATS connection is connected."),
		reconnects: d("reconnects_total", "Times the NATS connection reconnected (each follows a disconnect)."),
		slowDesc:   d("slow_consumers_total", "Slow consumer events: NATS dropped messages for a subscription of this connection that did not keep up."),
	}
}

// SlowConsumer counts one slow consumer event on the connection named
// conn; call it from the connection's error handler.
func (c *NATSConns) SlowConsumer(conn string) {
	c.mu.Lock()
	n, ok := c.slow[conn]
	if !ok {
		n = new(atomic.Uint64)
		c.slow[conn] = n
	}
	c.mu.Unlock()
	n.Add(1)
}

// Describe implements prometheus.Collector.
func (c *NATSConns) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.reconnects
	ch <- c.slowDesc
}

// Collect implements prometheus.Collector.
func (c *NATSConns) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, nc := range c.conns() {
		name := nc.Opts.Name
		if seen[name] {
			continue
		}
		seen[name] = true
		up := 0.0
		if nc.IsConnected() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, up, name)
		ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(nc.Stats().Reconnects), name)
		var slow uint64
		c.mu.Lock()
		if n, ok := c.slow[name]; ok {
			slow = n.Load()
		}
		c.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(c.slowDesc, prometheus.CounterValue, float64(slow), name)
	}
}
