package client

import "errors"

var (
	// ErrUnauthorized means the server refused the token: HTTP 401 on the
	// upgrade, close code 4001 before welcome, or an unauthorized error frame
	// in answer to hello.
	ErrUnauthorized = errors.New("client: unauthorized")

	// ErrClosed means the connection has ended (or Close was called). Errors
	// wrapping it also wrap the cause, so websocket.CloseStatus still works on
	// them.
	ErrClosed = errors.New("client: connection closed")

	// ErrSendExpired means Session.Send gave up retrying a message after
	// SessionOptions.SendExpiry without an ack. The message may or may not
	// have been stored: past the server's de-duplication window a retry
	// with the same client_id could store it twice, so the application
	// tells its user and lets them check the conversation.
	ErrSendExpired = errors.New("client: send not acknowledged in time")
)
