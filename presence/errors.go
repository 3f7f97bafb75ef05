package presence

import "errors"

// ErrNoGateway is returned by NewTracker without a gateway id: connection
// keys and the lease are named after it.
var ErrNoGateway = errors.New("presence: tracker needs a gateway id")

// errWatchEnded means a KV watcher closed its channel while it was still
// needed: the connection closed or the server deleted its consumer.
var errWatchEnded = errors.New("presence: watcher ended")
