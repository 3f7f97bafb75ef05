package protocol

import (
	"fmt"
	"strconv"
)

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

// Close is a close the server starts: the code and the reason of its
// close frame.
type Close struct {
	Code   uint16
	Reason string
}

// The closes the gateway starts itself. gws closes on its own with 1009
// (a frame too large), 1011 (one that inflates too large) and 1002 (a
// protocol error). docs/protocol.md's close code tables list each of
// these; protocol/spec's test checks that they do.
var (
	CloseIdle          = Close{1000, "idle: nothing received for 2 × heartbeat_s"}
	CloseShutdown      = Close{1001, "server shutting down"}
	CloseTooManyConns  = Close{1008, "too many connections for this user"}
	CloseBackendDown   = Close{1011, "temporarily unavailable"}
	CloseNotHello      = Close{CloseUnauthorized, "first frame must be hello with a token"}
	CloseHelloNoToken  = Close{CloseUnauthorized, "hello has no token"}
	CloseBadToken      = Close{CloseUnauthorized, "bad token"}
	CloseHelloLate     = Close{CloseUnauthorized, "no hello with a valid token in time"}
	CloseDeviceTooLong = Close{CloseUnauthorized, "hello device label over " + strconv.Itoa(MaxDeviceBytes) + " bytes"}
	CloseExpired       = Close{CloseTokenExpired, "token expired; send reauth with a fresh token before exp"}
	CloseQueueFull     = Close{CloseSlowOrAbusive, "send queue full: the client does not read"}
	CloseAbuse         = Close{CloseSlowOrAbusive, "rate limit exceeded far past the limit"}
	CloseByOperator    = Close{CloseKicked, "closed by an operator"}
	ServerCloses       = []Close{CloseIdle, CloseShutdown, CloseTooManyConns, CloseBackendDown, CloseNotHello, CloseHelloNoToken, CloseBadToken, CloseHelloLate, CloseDeviceTooLong, CloseExpired, CloseQueueFull, CloseAbuse, CloseByOperator, CloseAccountErased}
)
