package protocol

import "fmt"

// Error codes, fixed by the contract.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeTooLarge     = "too_large"
	CodeRateLimited  = "rate_limited"
	CodeConflict     = "conflict"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// WebSocket close codes the gateway uses beyond RFC 6455's.
const (
	// CloseUnauthorized ends a connection whose hello is missing, late or bad.
	CloseUnauthorized = 4001
	// CloseTokenExpired ends a connection whose token expired without a
	// fresh one sent in reauth.
	CloseTokenExpired = 4003
	// CloseSlowOrAbusive ends a connection that does not read its pushes or
	// floods far past its rate limit.
	CloseSlowOrAbusive = 4008
	// CloseKicked ends every connection of a user an operator closed
	// (natter admin user kick).
	CloseKicked = 4009
)

// Error is an error answer. It is both the frame sent to clients and a Go
// error, so handlers return it and the Go client hands it back.
type Error struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an Error frame with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Type: TypeError, Code: code, Message: fmt.Sprintf(format, args...)}
}
