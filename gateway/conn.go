package gateway

import (
	"net"
	"sync/atomic"
	"time"
)

// freshConn is the socket under a WebSocket. Every write (a batch, a pong,
// a close frame) runs on a write deadline, but nothing clears a deadline
// once its write is done: when gws closes a connection on its own, after a
// read error (a frame over MaxFrameBytes, a protocol error), the deadline
// the last batch set may be long past, and the close frame would fail
// before a byte went out, leaving the client a bare TCP FIN and no close
// code. So a write that finds the deadline last set already passed sets a
// fresh one of timeout first. A deadline still ahead is kept: closeWith
// shortens it to cut a write stuck on a client that does not read.
type freshConn struct {
	net.Conn
	timeout  time.Duration
	deadline atomic.Int64 // unix nanoseconds of the write deadline last set; 0 for none
}

// SetWriteDeadline implements net.Conn.
func (c *freshConn) SetWriteDeadline(t time.Time) error {
	c.note(t)
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline implements net.Conn.
func (c *freshConn) SetDeadline(t time.Time) error {
	c.note(t)
	return c.Conn.SetDeadline(t)
}

func (c *freshConn) note(t time.Time) {
	if t.IsZero() {
		c.deadline.Store(0)
		return
	}
	c.deadline.Store(t.UnixNano())
}

// Write implements net.Conn.
func (c *freshConn) Write(b []byte) (int, error) {
	if d := c.deadline.Load(); d != 0 {
		if now := time.Now(); now.UnixNano() >= d {
			_ = c.SetWriteDeadline(now.Add(c.timeout))
		}
	}
	return c.Conn.Write(b)
}
