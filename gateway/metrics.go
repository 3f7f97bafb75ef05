package gateway

// Counter is a monotonic counter (a prometheus.Counter fits).
type Counter interface{ Inc() }

// Observer records one observation (a prometheus.Histogram fits).
type Observer interface{ Observe(float64) }

// CodeCounter counts events by a WebSocket close code (metrics.NewCodes
// fits).
type CodeCounter interface{ Inc(code uint16) }

// ReasonCounter counts events by a reason (metrics.NewReasons fits).
type ReasonCounter interface{ Inc(reason string) }

// Reasons a gateway refuses work, counted by Metrics.Refused.
const (
	// RefusedRate is a request answered rate_limited.
	RefusedRate = "rate"
	// RefusedConnsPerIP is an upgrade refused with HTTP 429: too many
	// connections from one address.
	RefusedConnsPerIP = "conns_per_ip"
	// RefusedConnsPerUser is a connection closed with 1008: too many
	// connections of one user.
	RefusedConnsPerUser = "conns_per_user"
)

// Metrics are the hooks the gateway updates on its hot path; nil fields
// are skipped. Implementations must be safe for concurrent use and should
// not allocate: they run once per frame.
type Metrics struct {
	// FramesIn counts frames read from clients.
	FramesIn Counter
	// FramesOut counts frames queued to clients.
	FramesOut Counter
	// SocketWrites counts the writes that carried them: a socket with
	// several frames queued gets them in one write.
	SocketWrites Counter
	// SendAck observes, in seconds, a send from its frame to its ack.
	SendAck Observer
	// PublishErrors counts failed JetStream publishes of sends.
	PublishErrors Counter
	// PublishRetries counts JetStream publishes of sends tried again
	// during a leader change.
	PublishRetries Counter
	// ResendLookups counts sends marked as resends that were looked up in
	// the CHAT stream past JetStream's own duplicate window.
	ResendLookups Counter
	// MemberViewReads counts the membership views sends read: a sender
	// whose view was not kept, or was stale (memberview.go).
	MemberViewReads Counter
	// StaleViews counts the sends JetStream refused because membership
	// changed since the sender's view; each is decided again.
	StaleViews Counter
	// BusyViews counts the sends tried again because a clustered stream
	// had another send with a precondition on the same conversation's
	// membership subject in flight.
	BusyViews Counter
	// PushesDropped counts the times NATS dropped pushes for a user whose
	// dispatcher fell behind (each is followed by a resync).
	PushesDropped Counter
	// NoticesDropped counts typing and read notices dropped because their
	// queue was full.
	NoticesDropped Counter
	// Closes counts the connections the gateway closed, by close code:
	// those it closes itself (4001, 4003, 4008, 4009, 1008, 1011, 1001 at
	// shutdown) and those the WebSocket library closes for it (1009 for
	// a frame over MaxFrameBytes, 1002 for a protocol error).
	Closes CodeCounter
	// Refused counts refused work by reason (the Refused* constants).
	Refused ReasonCounter
}

func inc(c Counter) {
	if c != nil {
		c.Inc()
	}
}

func refused(r ReasonCounter, reason string) {
	if r != nil {
		r.Inc(reason)
	}
}
