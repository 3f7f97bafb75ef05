package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// SessionOptions configures NewSession.
type SessionOptions struct {
	// URLs are the gateways' ws:// URLs; a reconnect tries the next one
	// after the one that failed, so clients of a dead gateway move on.
	URLs []string
	// Options are used for every Dial. EventBuffer defaults to 65,536 here:
	// pushes that arrive while the session re-syncs wait in it.
	Options Options
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// failed dials (100 ms and 5 s by default); each wait is drawn
	// uniformly from [0, backoff) ("full jitter"), so clients of a dead
	// gateway do not reconnect in lockstep.
	MinBackoff, MaxBackoff time.Duration
	// OnMessage is called for every message of the user's conversations,
	// once per (conv, seq): live pushes (live true) and messages fetched by
	// a re-sync (live false). Pushes arrive in seq order; a message whose
	// push was lost is delivered by the next re-sync, after higher seqs.
	// It runs in the session's goroutine: it must not block for long nor
	// call the Session.
	OnMessage func(m *protocol.Message, live bool)
	// ResyncEvery, when positive, re-syncs every conversation that often
	// while connected. Live pushes travel over core NATS, which is at most
	// once; the gateway pushes resync when it knows it lost some (its NATS
	// connection reconnected, or it fell behind), and the session re-syncs
	// at once then. A periodic re-sync also finds what was lost in ways the
	// gateway cannot see (a push lost between NATS nodes).
	ResyncEvery time.Duration
	// OnConnect, when set, is called after each successful dial and
	// re-sync with the gateway URL.
	OnConnect func(url string)
	// SendExpiry bounds how long Send retries one message; then it fails
	// with ErrSendExpired. It must stay below the server's de-duplication
	// window (10 minutes by default), inside which a retry with the same
	// client_id is answered with the original seq. Default 5 minutes.
	SendExpiry time.Duration
	// OnSendRetry, when set, is called with the error of each Send attempt
	// that is retried (unavailable, internal, rate_limited, a dropped
	// connection): Send hides them, a load test counts them.
	OnSendRetry func(conv, clientID string, err error)
}

// Session is a connection that stays up: when the WebSocket ends (a
// gateway dies or shuts down with 1001) it dials again with backoff across
// SessionOptions.URLs and resumes with conversations + sync from the last
// seq it delivered in each conversation. Send retries with the same
// client_id until acknowledged, which the server's de-duplication makes
// safe. Keep Dial for a plain connection.
type Session struct {
	opts SessionOptions
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	cur     *Client
	changed chan struct{} // closed and replaced when cur changes
	convs   map[string]*convState
	dials   int
}

// convState is what a Session knows it delivered in one conversation:
// everything up to synced (checked against sync), and the seqs above it
// that came as pushes.
type convState struct {
	synced uint64
	seen   map[uint64]bool
	last   uint64
}

// NewSession dials the first gateway that answers (waiting as Dial does)
// and keeps the session up until Close. It fails only if ctx ends before
// any gateway accepted the user, or the token is refused.
func NewSession(ctx context.Context, opts SessionOptions) (*Session, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("client: session needs at least one gateway URL")
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	if opts.Options.EventBuffer <= 0 {
		opts.Options.EventBuffer = 1 << 16
	}
	if opts.SendExpiry <= 0 {
		opts.SendExpiry = 5 * time.Minute
	}
	runCtx, stop := context.WithCancel(context.Background())
	s := &Session{opts: opts, ctx: runCtx, stop: stop, done: make(chan struct{}),
		changed: make(chan struct{}), convs: make(map[string]*convState)}
	c, i, err := s.dial(ctx, 0)
	if err != nil {
		stop()
		return nil, err
	}
	go s.run(c, i)
	return s, nil
}

// dial tries the URLs from index i on, with backoff, until one accepts.
func (s *Session) dial(ctx context.Context, i int) (*Client, int, error) {
	backoff := s.opts.MinBackoff
	for {
		url := s.opts.URLs[i%len(s.opts.URLs)]
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := Dial(dctx, url, s.opts.Options)
		cancel()
		if err == nil {
			return c, i % len(s.opts.URLs), nil
		}
		if errors.Is(err, ErrUnauthorized) {
			return nil, i, err
		}
		i++
		wait := rand.N(backoff) + time.Millisecond
		select {
		case <-ctx.Done():
			return nil, i, fmt.Errorf("client: session: no gateway answered: %w (last: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
}

// run resyncs, reads events until the connection ends, and dials again.
func (s *Session) run(c *Client, i int) {
	defer close(s.done)
	for {
		// A failed first re-sync (say the history service is down) keeps
		// the connection: read retries it every second.
		err := s.resync(c)
		select {
		case <-c.Done():
		default:
			s.setCurrent(c)
			if s.opts.OnConnect != nil {
				s.opts.OnConnect(s.opts.URLs[i])
			}
			err = s.read(c, err != nil)
		}
		s.setCurrent(nil)
		_ = c.Close()
		if err != nil {
			// A gateway that accepts but cannot serve: do not spin.
			select {
			case <-s.ctx.Done():
			case <-time.After(rand.N(time.Second) + s.opts.MinBackoff):
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		// The gateway that failed is tried last.
		if c, i, err = s.dial(s.ctx, i+1); err != nil {
			return
		}
	}
}

// read delivers pushes until the connection ends, re-syncing on a resync
// push, every ResyncEvery, and every second while a re-sync is pending
// (failed).
func (s *Session) read(c *Client, pending bool) error {
	every := s.opts.ResyncEvery
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(min(every, time.Second))
	defer t.Stop()
	lastSync := time.Now()
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				return nil
			}
			if ev.Type == protocol.TypeResync {
				// The gateway lost pushes for us (its NATS connection
				// reconnected, or it fell behind): fetch them now.
				lastSync = time.Now()
				pending = s.resync(c) != nil
				continue
			}
			if ev.Type != protocol.TypeMessage {
				continue
			}
			m := new(protocol.Message)
			if ev.Decode(m) == nil {
				s.deliver(m, true)
			}
		case <-t.C:
			if !pending && (s.opts.ResyncEvery <= 0 || time.Since(lastSync) < s.opts.ResyncEvery) {
				continue
			}
			lastSync = time.Now()
			pending = s.resync(c) != nil
		}
	}
}

// resync fetches, for every conversation of the user, the messages after
// the last seq known complete (the end of the previous sync), so a lost
// push below a later one is found too. Pushes arriving meanwhile wait in
// the Events buffer and are delivered afterwards; those already fetched
// are dropped as duplicates.
func (s *Session) resync(c *Client) error {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	convs, err := c.Conversations(ctx)
	if err != nil {
		return err
	}
	for _, conv := range convs {
		for {
			s.mu.Lock()
			after := s.state(conv.Conv).synced
			s.mu.Unlock()
			if conv.LastSeq <= after {
				// Nothing new: a user in hundreds of conversations must
				// not spend a request (and its rate limit) on each.
				break
			}
			page, err := c.Sync(ctx, conv.Conv, after, 200)
			if err != nil {
				return err
			}
			for _, m := range page.Messages {
				s.deliver(m, false)
			}
			if n := len(page.Messages); n > 0 {
				s.markSynced(conv.Conv, page.Messages[n-1].Seq)
			}
			if !page.More || len(page.Messages) == 0 {
				break
			}
		}
	}
	return nil
}

// state returns conv's state; s.mu is held.
func (s *Session) state(conv string) *convState {
	st := s.convs[conv]
	if st == nil {
		st = &convState{seen: map[uint64]bool{}}
		s.convs[conv] = st
	}
	return st
}

// deliver hands m to OnMessage unless it was delivered before.
func (s *Session) deliver(m *protocol.Message, live bool) {
	s.mu.Lock()
	st := s.state(m.Conv)
	if m.Seq <= st.synced || st.seen[m.Seq] {
		s.mu.Unlock()
		return
	}
	st.seen[m.Seq] = true
	st.last = max(st.last, m.Seq)
	s.mu.Unlock()
	if s.opts.OnMessage != nil {
		s.opts.OnMessage(m, live)
	}
}

// markSynced records that sync returned everything of conv up to seq.
func (s *Session) markSynced(conv string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(conv)
	if seq <= st.synced {
		return
	}
	st.synced = seq
	for q := range st.seen {
		if q <= seq {
			delete(st.seen, q)
		}
	}
}

func (s *Session) setCurrent(c *Client) {
	s.mu.Lock()
	s.cur = c
	if c != nil {
		s.dials++
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Client waits until the session is connected and re-synced and returns
// the current connection. It may end at any time; Session's own methods
// retry across reconnects.
func (s *Session) Client(ctx context.Context) (*Client, error) {
	for {
		s.mu.Lock()
		c, changed := s.cur, s.changed
		s.mu.Unlock()
		if c != nil {
			select {
			case <-c.Done():
			default:
				return c, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, ErrClosed
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Connects returns how many times the session has connected and re-synced.
func (s *Session) Connects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dials
}

// LastSeq returns the highest seq delivered in conv.
func (s *Session) LastSeq(conv string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.convs[conv]; st != nil {
		return max(st.last, st.synced)
	}
	return 0
}

// Send sends a message and retries with the same client_id (a random one
// when empty) until it is acknowledged, the server refuses it for good
// (an error code other than unavailable, internal or rate_limited), ctx
// ends, or SessionOptions.SendExpiry has passed (ErrSendExpired). A retry
// of a message that was stored is answered with the original seq
// (Ack.Duplicate).
func (s *Session) Send(ctx context.Context, conv, clientID string, body any) (*protocol.Ack, error) {
	if clientID == "" {
		clientID = NewClientID()
	}
	// Retries stop at the deadline: one past the server's de-duplication
	// window could store the message a second time.
	ctx, cancel := context.WithTimeoutCause(ctx, s.opts.SendExpiry, ErrSendExpired)
	defer cancel()
	backoff := s.opts.MinBackoff
	var last error
	for {
		c, err := s.Client(ctx)
		if err != nil {
			return nil, s.sendFailed(ctx, conv, clientID, err, last)
		}
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		ack, err := c.Send(actx, conv, clientID, body)
		cancel()
		if err == nil {
			return ack, nil
		}
		var pe *protocol.Error
		if errors.As(err, &pe) && pe.Code != protocol.CodeUnavailable && pe.Code != protocol.CodeInternal && pe.Code != protocol.CodeRateLimited {
			return nil, err
		}
		last = err
		if s.opts.OnSendRetry != nil {
			s.opts.OnSendRetry(conv, clientID, err)
		}
		select {
		case <-ctx.Done():
			return nil, s.sendFailed(ctx, conv, clientID, ctx.Err(), last)
		case <-time.After(rand.N(backoff) + time.Millisecond):
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
}

// sendFailed says why Send gave up: ErrSendExpired when its own deadline
// passed, the caller's context error otherwise, with the last attempt's
// error.
func (s *Session) sendFailed(ctx context.Context, conv, clientID string, err, last error) error {
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrSendExpired) {
		err = ErrSendExpired
	}
	if last == nil {
		return fmt.Errorf("client: send %s/%s not acknowledged: %w", conv, clientID, err)
	}
	return fmt.Errorf("client: send %s/%s not acknowledged: %w (last: %w)", conv, clientID, err, last)
}

// Close ends the session and its connection and waits for its goroutine.
func (s *Session) Close() error {
	s.stop()
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	<-s.done
	return nil
}
