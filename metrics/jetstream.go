package metrics

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds the JetStream requests of one scrape.
const scrapeTimeout = 2 * time.Second

// JetStream reports, at scrape time, each named consumer's lag (messages
// not yet delivered, and delivered but not acked) and each named stream's
// last sequence. A stream's last sequence only grows, so
// rate(natter_stream_last_seq{stream="KV_PRESENCE"}[1m]) is the presence
// writes per second and the same on CHAT the message rate.
type JetStream struct {
	js        jetstream.JetStream
	consumers []Consumer
	streams   []string

	pending, ackPending, redelivered, lastSeq, up *prometheus.Desc
}

var _ prometheus.Collector = (*JetStream)(nil)

// Consumer names a durable consumer: its stream and its name.
type Consumer struct{ Stream, Name string }

// NewJetStream returns a collector for consumers and for streams. The
// consumer series have a stream label too: with partition streams each
// has a consumer of the same name.
func NewJetStream(js jetstream.JetStream, consumers []Consumer, streams []string) *JetStream {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
	}
	return &JetStream{js: js, consumers: consumers, streams: streams,
		pending:     d("consumer_pending", "Messages of the stream the consumer has not been delivered yet (its lag).", "consumer", "stream"),
		ackPending:  d("consumer_ack_pending", "Messages delivered to the consumer and not acknowledged yet.", "consumer", "stream"),
		redelivered: d("consumer_redelivered", "Messages being redelivered to the consumer.", "consumer", "stream"),
		lastSeq:     d("stream_last_seq", "Last sequence of the stream: a counter of writes.", "stream"),
		up:          d("jetstream_up", "1 when the last scrape's JetStream requests answered."),
	}
}

// Describe implements prometheus.Collector.
func (c *JetStream) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.ackPending, c.redelivered, c.lastSeq, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *JetStream) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	up := 1.0
	for _, cn := range c.consumers {
		name := cn.Name
		cons, err := c.js.Consumer(ctx, cn.Stream, name)
		if err != nil {
			up = 0
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			up = 0
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), name, cn.Stream)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), name, cn.Stream)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), name, cn.Stream)
	}
	for _, name := range c.streams {
		st, err := c.js.Stream(ctx, name)
		if err != nil {
			up = 0
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.lastSeq, prometheus.CounterValue, float64(st.CachedInfo().State.LastSeq), name)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}

// CounterSnapshot reports a map of counters read at scrape time, such as
// pushnotify.Dispatcher.Counters, as one counter with two labels.
type CounterSnapshot[K comparable] struct {
	desc   *prometheus.Desc
	read   func() map[K]uint64
	labels func(K) (string, string)
}

// NewCounterSnapshot reports read() as the counter name{l1,l2}, labels
// taken from each key by labels.
func NewCounterSnapshot[K comparable](name, help, l1, l2 string, read func() map[K]uint64, labels func(K) (string, string)) *CounterSnapshot[K] {
	return &CounterSnapshot[K]{
		desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, []string{l1, l2}, nil),
		read: read, labels: labels,
	}
}

// Describe implements prometheus.Collector.
func (c *CounterSnapshot[K]) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *CounterSnapshot[K]) Collect(ch chan<- prometheus.Metric) {
	for k, v := range c.read() {
		a, b := c.labels(k)
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(v), a, b)
	}
}
