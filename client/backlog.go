package client

import (
	"errors"
	"fmt"
	"sync"
)

// DefaultMaxEventBacklog is Options.MaxEventBacklog when it is zero.
const DefaultMaxEventBacklog = 64 << 20

// ErrEventBacklog ends a connection whose consumer left more than
// Options.MaxEventBacklog bytes of pushes unread beyond the Events buffer.
var ErrEventBacklog = errors.New("client: events not consumed: push backlog over its bound")

// eventBacklog holds the pushes that did not fit in Events while the
// consumer is behind. The reader never waits for the consumer: a reply
// that arrives behind unread pushes still reaches its Request (a reader
// that waited for room in Events would hold back every reply behind the
// push it waits with, so a program that sends requests without reading
// Events, as a load generator does, hung for good once the buffer was
// full). A pump goroutine, running only while the backlog is not empty,
// moves the backlog into Events in arrival order; the reader appends to
// the backlog instead of sending directly while the pump runs, so pushes
// stay in order.
type eventBacklog struct {
	mu          sync.Mutex
	q           []Event
	bytes       int
	max         int
	pumping     bool
	readerEnded bool
}

// deliver hands ev to Events, or to the backlog while Events is full or
// the backlog is not empty. It fails with ErrEventBacklog when the backlog
// would grow over its bound. Only the reader calls it.
func (c *Client) deliver(ev Event) error {
	b := &c.backlog
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.pumping {
		select {
		case c.events <- ev:
			return nil
		default:
		}
	}
	if b.bytes+len(ev.Raw) > b.max {
		return fmt.Errorf("%w (%d bytes held, MaxEventBacklog %d)", ErrEventBacklog, b.bytes, b.max)
	}
	b.q = append(b.q, ev)
	b.bytes += len(ev.Raw)
	if !b.pumping {
		b.pumping = true
		go c.pump()
	}
	return nil
}

// pump moves the backlog into Events until it is empty, or until Close
// (the rest is then dropped, as the reader no longer delivers either).
func (c *Client) pump() {
	b := &c.backlog
	for {
		b.mu.Lock()
		if len(b.q) == 0 {
			b.q = b.q[:0]
			b.pumping = false
			if b.readerEnded {
				close(c.events)
			}
			b.mu.Unlock()
			return
		}
		ev := b.q[0]
		b.q[0] = Event{}
		b.q = b.q[1:]
		b.bytes -= len(ev.Raw)
		b.mu.Unlock()
		select {
		case c.events <- ev:
		case <-c.closing:
			b.mu.Lock()
			b.q, b.bytes = nil, 0
			b.mu.Unlock()
		}
	}
}

// readerEnd closes Events once the backlog has been handed over: at once
// when it is empty, else by the pump after the last push.
func (c *Client) readerEnd() {
	b := &c.backlog
	b.mu.Lock()
	b.readerEnded = true
	if !b.pumping {
		close(c.events)
	}
	b.mu.Unlock()
}
