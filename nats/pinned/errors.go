package pinned

import "errors"

// ErrConfig means a Config lacks the stream, the consumer or the group.
var ErrConfig = errors.New("pinned: stream, consumer and group are required")

// ErrNotPinned means the consumer does not use the pinned_client priority
// policy for the group: several workers would share its messages and
// stream order would be lost, so Run refuses it.
var ErrNotPinned = errors.New("pinned: consumer is not a pinned priority group")
