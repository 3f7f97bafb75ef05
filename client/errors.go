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
)
