package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Gateway holds the gateway's hot-path metrics, created once: updating
// one is an atomic add, with no label lookup or allocation.
type Gateway struct {
	FramesIn      prometheus.Counter
	FramesOut     prometheus.Counter
	SocketWrites  prometheus.Counter
	SendAck       prometheus.Histogram
	PublishErrors prometheus.Counter
	// PublishRetries, PushesDropped and NoticesDropped: see gateway.Metrics.
	PublishRetries prometheus.Counter
	ResendLookups  prometheus.Counter
	PushesDropped  prometheus.Counter
	NoticesDropped prometheus.Counter
	// MemberViewReads and StaleViews: see gateway.Metrics.
	MemberViewReads prometheus.Counter
	StaleViews      prometheus.Counter
	BusyViews       prometheus.Counter
}

// NewGateway registers the gateway's metrics on reg. The gateway takes
// them when it is built; NewGatewayConnections is registered once it is.
func NewGateway(reg prometheus.Registerer) *Gateway {
	g := &Gateway{
		FramesIn: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "frames_in_total", Help: "WebSocket frames received from clients."}),
		FramesOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "frames_out_total", Help: "WebSocket frames queued to clients (replies and pushes)."}),
		SocketWrites: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "socket_writes_total", Help: "Socket writes carrying those frames: several frames queued to one connection go out in one write."}),
		SendAck: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "send_ack_seconds", Help: "From a validated send to its ack queued: the JetStream publish and its PubAck.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		PublishErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "jetstream_publish_errors_total", Help: "JetStream publishes of sends that failed (the client got an error and retries)."}),
		PublishRetries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "jetstream_publish_retries_total", Help: "JetStream publishes of sends tried again by the gateway during a leader change (same Nats-Msg-Id)."}),
		ResendLookups: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "resend_lookups_total", Help: "Sends marked resend looked up in the CHAT stream over the de-dup window (first sends never are)."}),
		PushesDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "pushes_dropped_total", Help: "Times pushes for a user were dropped because its dispatcher fell behind; each is followed by a resync frame."}),
		NoticesDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "notices_dropped_total", Help: "Typing and read notices dropped because their queue was full."}),
		MemberViewReads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "member_view_reads_total", Help: "Membership reads of sends whose sender's view was not kept or was stale; a kept view reads nothing."}),
		StaleViews: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "member_views_stale_total", Help: "Sends JetStream refused because membership changed since the sender's view (each is decided again)."}),
		BusyViews: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "gateway",
			Name: "member_views_busy_total", Help: "Sends tried again because a clustered CHAT had another send of the conversation with a membership precondition in flight."}),
	}
	reg.MustRegister(g.FramesIn, g.FramesOut, g.SocketWrites, g.SendAck, g.PublishErrors, g.PublishRetries, g.ResendLookups, g.PushesDropped, g.NoticesDropped,
		g.MemberViewReads, g.StaleViews, g.BusyViews)
	return g
}

// NewGatewayConnections is the gauge of open WebSocket connections;
// connections, usually the gateway's Connections method, is read at
// scrape time.
func NewGatewayConnections(connections func() int) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "gateway",
		Name: "connections", Help: "Open WebSocket connections."}, func() float64 { return float64(connections()) })
}

// NewFanoutDelay registers natter_fanout_delay_seconds: how long a message
// waited from its store in CHAT to the publish of its deliveries. With
// natter_gateway_send_ack_seconds it makes up the server's send→deliver.
func NewFanoutDelay(reg prometheus.Registerer) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "fanout",
		Name: "delay_seconds", Help: "From a message stored in CHAT to its deliveries published by the fan-out.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	reg.MustRegister(h)
	return h
}
