package protocol

// TypeResync is a push that tells a client it may have missed pushes:
// the gateway's NATS connection reconnected, or the gateway dropped pushes
// for the user. The client syncs every conversation it holds (or Conv
// only, when set) from the highest seq up to which it holds everything.
const TypeResync = "resync"

// Reasons a resync is pushed for.
const (
	// ResyncReconnect: the gateway's NATS connection reconnected; pushes
	// in flight were lost.
	ResyncReconnect = "reconnect"
	// ResyncDropped: the gateway dropped pushes for this user because they
	// came faster than it could write them.
	ResyncDropped = "dropped"
)

// Resync is the resync push. It has no id: no request caused it.
type Resync struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
	// Conv names the one conversation affected; empty means all of them.
	Conv string `json:"conv,omitempty"`
}
