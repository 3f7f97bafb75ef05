package admin

import "errors"

// Errors of Admin's methods; the message wrapping them names the id.
var (
	// ErrUnknownUser: nothing in NATS mentions the user (no conversation,
	// presence, device, block list or settings). Users are not registered
	// anywhere: they exist through what they did.
	ErrUnknownUser = errors.New("admin: unknown user")
	// ErrUnknownConversation: no conversation has that id.
	ErrUnknownConversation = errors.New("admin: unknown conversation")
	// ErrBadID: the id cannot be a user or conversation id.
	ErrBadID = errors.New("admin: invalid id")
)
