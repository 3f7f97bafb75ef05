package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/coder/websocket"

	"github.com/natter-chat/natter/protocol"
)

// Event is a server push (a frame without "id"), or a reply whose id matched
// no pending request.
type Event struct {
	// Type is the frame's "type"; "" when the frame was not a JSON object.
	Type string
	// Raw is the whole frame.
	Raw json.RawMessage
}

// Decode unmarshals the frame into v (e.g. *protocol.Message).
func (e Event) Decode(v any) error { return json.Unmarshal(e.Raw, v) }

// Events delivers every server push in arrival order. When the consumer falls
// behind and the buffer is full, the pushes wait in a bounded backlog
// (Options.MaxEventBacklog) and replies are still routed to their requests:
// a reply can then be returned before the pushes that preceded it on the
// wire are in Events (they follow, in order). Nothing is dropped: a backlog
// over its bound ends the connection with ErrEventBacklog. The channel is
// closed when the connection has ended and the backlog is handed over.
func (c *Client) Events() <-chan Event { return c.events }

// NextEvent waits for the next event whose Type is one of types (any type
// when none are given), discarding the others. It fails when ctx is done, or
// with ErrClosed once the connection has ended and the buffer is drained.
func (c *Client) NextEvent(ctx context.Context, types ...string) (Event, error) {
	for {
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case ev, ok := <-c.events:
			if !ok {
				return Event{}, c.closedErr()
			}
			if len(types) == 0 {
				return ev, nil
			}
			for _, t := range types {
				if ev.Type == t {
					return ev, nil
				}
			}
		}
	}
}

// WriteRaw writes frame as one text frame, as is (tests send malformed input
// with it). Like every write, a ctx that ends while the frame is being
// written closes the connection: a half-written frame cannot be taken back.
func (c *Client) WriteRaw(ctx context.Context, frame []byte) error {
	c.traced(true, frame)
	if err := c.conn.Write(ctx, websocket.MessageText, frame); err != nil {
		select {
		case <-c.done:
			return c.closedErr()
		case <-c.closing:
			return fmt.Errorf("%w by Close: %w", ErrClosed, err)
		default:
		}
		if errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return fmt.Errorf("client: write: %w", err)
	}
	return nil
}

// Request sends req and waits for the reply with the same id, for ctx to end,
// or for the connection to end (ErrClosed, wrapping the cause).
//
// req is a protocol.Request (value or pointer), or any value that marshals to
// a JSON object with "type". Without an id it gets a unique one ("c1",
// "c2", ...). The reply is returned raw; a reply of type "error" is also
// returned as a *protocol.Error, for errors.As.
func (c *Client) Request(ctx context.Context, req any) (json.RawMessage, error) {
	id, frame, err := c.prepare(req)
	if err != nil {
		return nil, err
	}
	ch := make(chan json.RawMessage, 1)
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return nil, c.closedErr()
	}
	if _, dup := c.pending[id]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("client: request id %q is already pending", id)
	}
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.WriteRaw(ctx, frame); err != nil {
		c.forget(id)
		return nil, err
	}
	select {
	case raw := <-ch:
		return reply(raw)
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	case <-c.done:
		// The reader may have answered just before it ended.
		select {
		case raw := <-ch:
			return reply(raw)
		default:
			return nil, c.closedErr()
		}
	}
}

// forget drops a pending request; a late reply then goes to Events.
func (c *Client) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Client) closedErr() error {
	if err := c.Err(); err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	} else if err != nil {
		return err
	}
	return ErrClosed
}

func reply(raw json.RawMessage) (json.RawMessage, error) {
	var h frameHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return raw, fmt.Errorf("client: malformed reply: %w", err)
	}
	if h.Type != protocol.TypeError {
		return raw, nil
	}
	perr := new(protocol.Error)
	if err := json.Unmarshal(raw, perr); err != nil {
		return raw, fmt.Errorf("client: malformed error reply: %w", err)
	}
	return raw, perr
}

// newID returns the next client-assigned request id.
func (c *Client) newID() string {
	return "c" + strconv.FormatUint(c.nextID.Add(1), 10)
}

// prepare encodes req with an id, assigning one if it has none.
func (c *Client) prepare(req any) (string, []byte, error) {
	var r *protocol.Request
	switch v := req.(type) {
	case protocol.Request:
		r = &v
	case *protocol.Request:
		cp := *v
		r = &cp
	}
	if r != nil {
		if r.ID == "" {
			r.ID = c.newID()
		}
		b, err := json.Marshal(r)
		return r.ID, b, err
	}

	b, err := json.Marshal(req)
	if err != nil {
		return "", nil, fmt.Errorf("client: encode request: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return "", nil, fmt.Errorf("client: request must encode to a JSON object, got %.40s", b)
	}
	var id string
	if raw, ok := m["id"]; ok {
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", nil, fmt.Errorf("client: request id must be a string, got %s", raw)
		}
	}
	if id != "" {
		return id, b, nil
	}
	id = c.newID()
	m["id"], _ = json.Marshal(id)
	b, err = json.Marshal(m)
	return id, b, err
}
