package fanout

import "errors"

// ErrSubscribe means the fan-out could not subscribe to the typing or read
// notices, so it does not run.
var ErrSubscribe = errors.New("fanout: cannot subscribe to notices")

// ErrDeliver means a publish to a member's subject failed; the stored
// message is asked for again, so every member still gets it.
var ErrDeliver = errors.New("fanout: delivery failed")

// ErrStopping means a delivery gave up because its worker is stopping; the
// message stays unacknowledged and the next worker delivers it again.
var ErrStopping = errors.New("fanout: stopping")
