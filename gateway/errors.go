package gateway

import "errors"

// Errors the gateway's dependencies return for a request that cannot be
// done as asked. Each maps to a protocol error code; for all but
// ErrForbidden the client sees the error's own text, so implementations
// wrap them with a message meant for the user.
var (
	// ErrForbidden: the user is not a member, or not allowed to do this
	// (protocol.CodeForbidden).
	ErrForbidden = errors.New("gateway: forbidden")
	// ErrBadRequest: the request can never succeed as asked
	// (protocol.CodeBadRequest).
	ErrBadRequest = errors.New("gateway: bad request")
	// ErrNotFound: the target of the request is missing
	// (protocol.CodeNotFound).
	ErrNotFound = errors.New("gateway: not found")
	// ErrConflict: concurrent changes kept the update from applying
	// (protocol.CodeConflict).
	ErrConflict = errors.New("gateway: conflict")
	// ErrTooLarge: a limit was hit (protocol.CodeTooLarge).
	ErrTooLarge = errors.New("gateway: too large")
)

// Errors of the gateway itself.
var (
	// ErrMissingDep is returned by New when a required dependency is nil.
	ErrMissingDep = errors.New("gateway: every dependency is required")
	// errUnavailable: a backend stayed unavailable past the time the
	// gateway waits for it (protocol.CodeUnavailable).
	errUnavailable = errors.New("gateway: unavailable")
	// errTooManyConns refuses a connection past MaxConnsPerUser.
	errTooManyConns = errors.New("gateway: too many connections for this user")
)

// ErrRateLimited: a user was added to conversations by others too often
// (protocol.CodeRateLimited); the client sees the error's text.
var ErrRateLimited = errors.New("gateway: rate limited")
