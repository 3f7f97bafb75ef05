// Package client is a Go client for Natter's WebSocket protocol v1
// (docs/protocol.md), used by end-to-end tests, the load generator and bots.
//
// A Client owns one WebSocket connection and one reader goroutine. Requests
// carry an id and wait for the reply with the same id; frames without an id
// (server pushes), and replies nobody is waiting for, are delivered in arrival
// order on Events. All methods are safe for concurrent use.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/natter-chat/natter/protocol"
)

// ReadLimit is the largest frame the client accepts from the server; a larger
// one ends the connection with close code 1009.
const ReadLimit = 2 << 20

// DefaultEventBuffer is the capacity of the Events channel when
// Options.EventBuffer is zero or negative.
const DefaultEventBuffer = 1024

// Options configures Dial.
type Options struct {
	// Token is the JWT that authenticates the user.
	Token string
	// HeaderAuth sends Token in the Authorization: Bearer header of the
	// upgrade request instead of in a hello frame.
	HeaderAuth bool
	// Device is the device name sent in hello. With HeaderAuth, a non-empty
	// Device is sent in a hello after the first welcome, and Dial waits for
	// the second welcome.
	Device string
	// Header holds extra upgrade request headers (e.g. Origin).
	Header http.Header
	// Compression offers permessage-deflate. The client uses no context
	// takeover, which costs far less memory per idle connection.
	Compression bool
	// EventBuffer is the capacity of the Events channel, DefaultEventBuffer
	// when zero or negative.
	EventBuffer int
	// MaxEventBacklog bounds the bytes of pushes held beyond EventBuffer
	// while the consumer of Events is behind (DefaultMaxEventBacklog when
	// zero). Replies never wait behind unread pushes; a connection whose
	// backlog would grow over the bound ends with ErrEventBacklog (its
	// pending requests fail with it), so a consumer that stopped reading
	// costs bounded memory and surfaces as an error, not as a hang.
	MaxEventBacklog int
	// HTTPClient, when set, is used for the upgrade request. Its Timeout
	// must be zero (coder/websocket refuses it); use the Dial context.
	HTTPClient *http.Client
	// KeepAlive is how often a WebSocket ping is sent, so that an idle
	// connection is not closed by the server (it closes connections silent
	// for two heartbeats). Zero means every heartbeat_s/2 from welcome;
	// negative sends none.
	KeepAlive time.Duration
	// Trace, when set, sees every frame the client writes (sent true) and
	// reads (sent false), as the bytes on the wire, in order per
	// direction; from the reader goroutine and the writers' own. It must
	// not keep frame past the call. Tests validate traffic with it
	// against the protocol's schema (protocol/spec); a conformance log
	// records it.
	Trace func(sent bool, frame []byte)
	// DeliveredDelay is how long the client gathers the messages of
	// others that reach it (pushes and sync or history pages) before it
	// reports them with one cumulative delivered frame per conversation
	// (delivered.go): their senders see them delivered. Zero means
	// DefaultDeliveredDelay; negative turns the reports off.
	DeliveredDelay time.Duration
}

// Client is one authenticated protocol v1 connection.
type Client struct {
	conn    *websocket.Conn
	trace   func(sent bool, frame []byte)
	welcome protocol.Welcome
	nextID  atomic.Uint64

	// origin (http[s]://host of the URL dialed) and hc are what upload
	// URLs are resolved against and PUT with (attach.go).
	origin string
	hc     *http.Client

	events    chan Event
	backlog   eventBacklog
	early     []Event // pushes that arrived before welcome; the reader sends them first
	delivered deliveredMarks

	closeOnce  sync.Once
	closing    chan struct{} // closed by Close: the reader stops blocking on Events
	done       chan struct{} // closed when the reader has ended
	readerDone chan struct{}

	mu      sync.Mutex
	pending map[string]chan json.RawMessage
	ended   bool
	err     error // why the connection ended; set before done is closed
}

// Dial connects to a ws:// or wss:// URL (e.g. ws://127.0.0.1:8080/v1/ws),
// authenticates with the header or a hello frame, and waits for welcome.
// ctx bounds the whole handshake; it has no effect on the connection after
// Dial returns.
//
// An HTTP 401 from the upgrade, a 4001 close before welcome, and an
// unauthorized error frame in answer to hello return an error matching
// ErrUnauthorized.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	hdr := opts.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	if opts.HeaderAuth {
		hdr.Set("Authorization", "Bearer "+opts.Token)
	}
	dopts := &websocket.DialOptions{HTTPClient: opts.HTTPClient, HTTPHeader: hdr}
	if opts.Compression {
		dopts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	conn, resp, err := websocket.Dial(ctx, url, dopts)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%w: upgrade answered HTTP 401: %w", ErrUnauthorized, err)
		}
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	conn.SetReadLimit(ReadLimit)

	buf := opts.EventBuffer
	if buf <= 0 {
		buf = DefaultEventBuffer
	}
	c := &Client{
		conn:       conn,
		trace:      opts.Trace,
		events:     make(chan Event, buf),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		pending:    make(map[string]chan json.RawMessage),
		origin:     httpOrigin(url),
		hc:         opts.HTTPClient,
	}
	c.backlog.max = opts.MaxEventBacklog
	if c.backlog.max == 0 {
		c.backlog.max = DefaultMaxEventBacklog
	}
	c.delivered = deliveredMarks{c: c, delay: opts.DeliveredDelay}
	if c.delivered.delay == 0 {
		c.delivered.delay = DefaultDeliveredDelay
	}
	if err := c.handshake(ctx, opts); err != nil {
		conn.CloseNow()
		return nil, err
	}
	go c.readLoop()
	every := opts.KeepAlive
	if every == 0 && c.welcome.Heartbeat > 0 {
		every = time.Duration(c.welcome.Heartbeat) * time.Second / 2
	}
	if every > 0 {
		go c.keepAlive(every)
	}
	return c, nil
}

// keepAlive pings until the connection ends. The pong is read by the
// reader goroutine, which the library requires for Ping to return.
func (c *Client) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			_ = c.conn.Ping(ctx)
			cancel()
		}
	}
}

// handshake runs before the reader goroutine exists, so it reads directly.
func (c *Client) handshake(ctx context.Context, opts Options) error {
	if !opts.HeaderAuth {
		if err := c.writeJSON(ctx, protocol.Request{Type: protocol.TypeHello, Token: opts.Token, Device: opts.Device}); err != nil {
			return fmt.Errorf("client: send hello: %w", err)
		}
		return c.awaitWelcome(ctx)
	}
	if err := c.awaitWelcome(ctx); err != nil {
		return err
	}
	if opts.Device == "" {
		return nil
	}
	if err := c.writeJSON(ctx, protocol.Request{Type: protocol.TypeHello, Device: opts.Device}); err != nil {
		return fmt.Errorf("client: send hello: %w", err)
	}
	return c.awaitWelcome(ctx)
}

func (c *Client) writeJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.traced(true, b)
	return c.conn.Write(ctx, websocket.MessageText, b)
}

func (c *Client) traced(sent bool, frame []byte) {
	if c.trace != nil {
		c.trace(sent, frame)
	}
}

// awaitWelcome reads until a welcome frame; an error frame fails the
// handshake and pushes are kept for Events.
func (c *Client) awaitWelcome(ctx context.Context) error {
	for {
		_, data, err := c.conn.Read(ctx)
		if err == nil {
			c.traced(false, data)
		}
		if err != nil {
			if websocket.CloseStatus(err) == protocol.CloseUnauthorized {
				var ce websocket.CloseError
				errors.As(err, &ce)
				return fmt.Errorf("%w: closed before welcome (%q): %w", ErrUnauthorized, ce.Reason, err)
			}
			return fmt.Errorf("client: waiting for welcome: %w", err)
		}
		var h frameHead
		if err := json.Unmarshal(data, &h); err != nil {
			return fmt.Errorf("client: malformed frame before welcome: %w", err)
		}
		switch h.Type {
		case protocol.TypeWelcome:
			var w protocol.Welcome
			if err := json.Unmarshal(data, &w); err != nil {
				return fmt.Errorf("client: malformed welcome: %w", err)
			}
			c.welcome = w
			return nil
		case protocol.TypeError:
			perr := new(protocol.Error)
			if err := json.Unmarshal(data, perr); err != nil {
				return fmt.Errorf("client: malformed error frame: %w", err)
			}
			if perr.Code == protocol.CodeUnauthorized {
				return fmt.Errorf("%w: hello refused: %w", ErrUnauthorized, perr)
			}
			return fmt.Errorf("client: hello refused: %w", perr)
		default:
			c.early = append(c.early, Event{Type: h.Type, Raw: data})
		}
	}
}

// frameHead is the part of every frame the reader routes on, and what a
// message push's delivered report needs.
type frameHead struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Conv   string `json:"conv"`
	Seq    uint64 `json:"seq"`
	Sender string `json:"sender"`
	// ExpiresAt of a message push: one that expired is dropped (ttl.go).
	ExpiresAt string `json:"expires_at"`
}

// readLoop is the connection's only reader. It routes replies to pending
// requests and everything else to Events, through the backlog while Events
// is full (backlog.go): it never waits for the consumer.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	defer c.readerEnd()
	for _, ev := range c.early {
		if err := c.deliver(ev); err != nil {
			c.end(err)
			return
		}
	}
	c.early = nil
	for {
		// A Background ctx: no per-read timer, and only Close or the peer
		// ends the read.
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			c.end(err)
			return
		}
		c.traced(false, data)
		var h frameHead
		if json.Unmarshal(data, &h) != nil {
			// A malformed server frame is surfaced, not hidden: Type is "".
			h = frameHead{}
		}
		if h.ID != "" {
			c.mu.Lock()
			ch, ok := c.pending[h.ID]
			delete(c.pending, h.ID)
			c.mu.Unlock()
			if ok {
				ch <- data // buffered 1, and only this goroutine sends
				continue
			}
		}
		if expiredPush(&h) {
			continue
		}
		if h.Type == protocol.TypeMessage && h.Sender != c.welcome.User {
			c.delivered.note(h.Conv, h.Seq)
		}
		if err := c.deliver(Event{Type: h.Type, Raw: data}); err != nil {
			c.end(err)
			return
		}
	}
}

// end records why the connection ended and wakes every waiter.
func (c *Client) end(cause error) {
	select {
	case <-c.closing:
		// The library's Close usually consumes the peer's close frame itself,
		// so the reader sees only a closed connection: report the 1000 we sent.
		if websocket.CloseStatus(cause) == -1 {
			cause = fmt.Errorf("%w by Close (%w): %w", ErrClosed, websocket.CloseError{Code: websocket.StatusNormalClosure}, cause)
		} else {
			cause = fmt.Errorf("%w by Close: %w", ErrClosed, cause)
		}
	default:
	}
	c.mu.Lock()
	c.ended = true
	c.err = cause
	c.pending = nil
	c.mu.Unlock()
	close(c.done)
	c.delivered.stop()
	// Unblocks writers, and ends the connection if the reader stopped early.
	c.conn.CloseNow()
}

// Welcome returns the welcome frame the server sent during Dial.
func (c *Client) Welcome() protocol.Welcome { return c.welcome }

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is open. After Close
// it matches ErrClosed.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// CloseStatus returns the close code of the connection's end with
// websocket.CloseStatus semantics: -1 while open or when no close frame was
// received.
func (c *Client) CloseStatus() int { return int(websocket.CloseStatus(c.Err())) }

// CloseReason returns the reason in the close frame that ended the
// connection, or "".
func (c *Client) CloseReason() string {
	var ce websocket.CloseError
	if errors.As(c.Err(), &ce) {
		return ce.Reason
	}
	return ""
}

// Close closes the connection normally (1000), waits up to the library's
// handshake timeouts for the peer, and returns once the reader goroutine has
// ended. Pending requests fail with ErrClosed. Close is idempotent; calls
// after the first return nil.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closing)
		select {
		case <-c.done:
			// Already ended: nothing to hand-shake.
		default:
			err = c.conn.Close(websocket.StatusNormalClosure, "")
		}
		<-c.readerDone
		if err != nil && websocket.CloseStatus(err) == websocket.StatusNormalClosure {
			err = nil
		}
	})
	return err
}
