package conversation

import "errors"

// Errors returned by Store. The gateway maps each to a protocol error code.
var (
	// ErrForbidden: the actor is not a member, or not allowed to do this.
	// A non-member gets it whether the conversation exists or not.
	ErrForbidden = errors.New("conversation: forbidden")
	// ErrBadRequest: the request can never succeed as asked.
	ErrBadRequest = errors.New("conversation: bad request")
	// ErrNotFound: the target of an operation (not the conversation) is missing.
	ErrNotFound = errors.New("conversation: not found")
	// ErrConflict: concurrent changes kept the update from applying.
	ErrConflict = errors.New("conversation: conflict")
	// ErrTooLarge: a limit (members per group, conversations per user) was hit.
	ErrTooLarge = errors.New("conversation: too large")
	// ErrRefused: the user concerned does not consent (their add_policy
	// refuses the actor), is banned, or the actor's role does not allow
	// the change; the error's text says why, for the actor.
	ErrRefused = errors.New("conversation: refused")
)

// ErrRateLimited: a user was added to conversations by others too often.
var ErrRateLimited = errors.New("conversation: rate limited")
