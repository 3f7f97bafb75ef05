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
	// sync (live false). Pushes arrive in seq order; a push whose prev the
	// session does not hold reveals a lost one, which a sync fetches at
	// once: the lost message is then delivered right after the push that
	// revealed it, so it comes after a higher seq.
	// It runs in the session's goroutine: it must not block for long nor
	// call the Session.
	OnMessage func(m *protocol.Message, live bool)
	// ResyncEvery, when positive, re-syncs every conversation that often
	// while connected. It is not needed to get every message: a lost push
	// is noticed by the next push's prev, and the gateway pushes resync
	// when it knows it lost some (its NATS connection reconnected, or it
	// fell behind); the session syncs at once then. What it adds is a
	// bound on how late the last messages of a quiet conversation arrive
	// when their pushes were lost and nothing followed them. Off by
	// default.
	ResyncEvery time.Duration
	// OnConnect, when set, is called after each successful dial and
	// re-sync with the gateway URL.
	OnConnect func(url string)
	// SendExpiry bounds how long Send retries one message; then it fails
	// with ErrSendExpired. It must stay below the server's de-duplication
	// window (10 minutes by default), inside which a retry with the same
	// client_id, marked as a resend as Send does, is answered with the
	// original seq. Default 5 minutes.
	SendExpiry time.Duration
	// OnSendRetry, when set, is called with the error of each Send attempt
	// that is retried (unavailable, internal, rate_limited, a dropped
	// connection): Send hides them, a load test counts them.
	OnSendRetry func(conv, clientID string, err error)
	// TokenSource, when set, returns a token for the session's user. It is
	// called before every dial (Options.Token is then not used) and again
	// before the connection's token expires (a quarter of its remaining
	// life before exp, at most a minute before), and the fresh token is
	// sent in reauth so the gateway does not close the connection with
	// 4003. A failed refresh is retried every second. Without it a
	// connection ends when its token expires, and the redial fails with
	// ErrUnauthorized.
	TokenSource func(ctx context.Context) (string, error)
}

// Session is a connection that stays up: when the WebSocket ends (a
// gateway dies or shuts down with 1001) it dials again with backoff across
// SessionOptions.URLs and resumes with conversations + sync after the seq
// up to which it holds everything in each conversation. A push whose prev
// it does not hold (one was lost on the way) makes it sync that
// conversation at once. Send retries with the same client_id until
// acknowledged, which the server's de-duplication makes safe. Keep Dial
// for a plain connection.
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

	// tokenExp is the exp of the last token from TokenSource; the
	// session's goroutine owns it.
	tokenExp time.Time
}

// convState is what a Session delivered of one conversation: every item
// up to held (the contiguous point: a sync page, or items whose prev
// chained on), and the items above it delivered since, each with its prev.
// Syncs ask for what follows held, never for what follows last.
type convState struct {
	held  uint64
	above map[uint64]uint64 // seq -> prev
	last  uint64
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
		opts, err := s.dialOptions(dctx)
		var c *Client
		if err == nil {
			c, err = Dial(dctx, url, opts)
		}
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
	refresh := s.refreshTimer()
	defer refresh.Stop()
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
			if ev.Decode(m) == nil && s.deliver(m, true) {
				// A gap: fetch what was lost now, not at the next tick.
				ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
				if err := s.syncConv(ctx, c, m.Conv); err != nil {
					pending = true
				}
				cancel()
			}
		case <-refresh.C:
			refresh.Reset(s.refresh(c))
		case <-t.C:
			if !pending && (s.opts.ResyncEvery <= 0 || time.Since(lastSync) < s.opts.ResyncEvery) {
				continue
			}
			lastSync = time.Now()
			pending = s.resync(c) != nil
		}
	}
}

// resync syncs every conversation of the user.
func (s *Session) resync(c *Client) error {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	convs, err := c.Conversations(ctx)
	if err != nil {
		return err
	}
	for _, conv := range convs {
		s.mu.Lock()
		held := s.state(conv.Conv).held
		s.mu.Unlock()
		if conv.LastSeq <= held {
			// Nothing new: a user in hundreds of conversations must not
			// spend a request (and its rate limit) on each.
			continue
		}
		if err := s.syncConv(ctx, c, conv.Conv); err != nil {
			return err
		}
	}
	return nil
}

// syncConv fetches the messages of conv after the point up to which the
// session holds everything, so a lost push below a later one is found
// too. Pushes arriving meanwhile wait in the Events buffer and are
// delivered afterwards; those already fetched are dropped as duplicates.
func (s *Session) syncConv(ctx context.Context, c *Client, conv string) error {
	for {
		s.mu.Lock()
		after := s.state(conv).held
		s.mu.Unlock()
		page, err := c.Sync(ctx, conv, after, 200)
		if err != nil {
			return err
		}
		for _, m := range page.Messages {
			s.deliver(m, false)
		}
		if n := len(page.Messages); n > 0 {
			s.markSynced(conv, page.Messages[n-1].Seq)
		}
		if !page.More || len(page.Messages) == 0 {
			return nil
		}
	}
}

// state returns conv's state; s.mu is held.
func (s *Session) state(conv string) *convState {
	st := s.convs[conv]
	if st == nil {
		st = &convState{above: map[uint64]uint64{}}
		s.convs[conv] = st
	}
	return st
}

// deliver hands m to OnMessage unless it was delivered before, and
// reports a gap: m is a push, and the session does not hold everything up
// to it (its prev, or an item between, is missing).
func (s *Session) deliver(m *protocol.Message, live bool) (gap bool) {
	s.mu.Lock()
	st := s.state(m.Conv)
	if _, dup := st.above[m.Seq]; dup || m.Seq <= st.held {
		s.mu.Unlock()
		return false
	}
	st.above[m.Seq] = m.Prev
	st.last = max(st.last, m.Seq)
	st.advance()
	gap = live && st.held < m.Seq
	s.mu.Unlock()
	if s.opts.OnMessage != nil {
		s.opts.OnMessage(m, live)
	}
	return gap
}

// advance moves held over every item delivered above it whose prev it
// reaches: holding everything up to prev and the item itself is holding
// everything up to the item. above is small: it holds items only while
// a gap is open.
func (st *convState) advance() {
	for moved := true; moved; {
		moved = false
		for seq, prev := range st.above {
			if seq <= st.held {
				delete(st.above, seq)
			} else if prev <= st.held {
				st.held, moved = seq, true
				delete(st.above, seq)
			}
		}
	}
}

// markSynced records that sync returned everything of conv up to seq.
func (s *Session) markSynced(conv string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(conv)
	st.held = max(st.held, seq)
	st.advance()
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
		return max(st.last, st.held)
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
	return s.SendWith(ctx, conv, clientID, body, SendOptions{})
}

// SendWith is Send with the options of a plain message (mentions).
func (s *Session) SendWith(ctx context.Context, conv, clientID string, body any, opts SendOptions) (*protocol.Ack, error) {
	if clientID == "" {
		clientID = NewClientID()
	}
	// Retries stop at the deadline: one past the server's de-duplication
	// window could store the message a second time.
	ctx, cancel := context.WithTimeoutCause(ctx, s.opts.SendExpiry, ErrSendExpired)
	defer cancel()
	backoff := s.opts.MinBackoff
	var last error
	for attempt := 0; ; attempt++ {
		c, err := s.Client(ctx)
		if err != nil {
			return nil, s.sendFailed(ctx, conv, clientID, err, last)
		}
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		// After the first attempt marked: found over the whole de-dup
		// window (Client.Resend).
		ack, err := c.sendWith(actx, conv, clientID, body, opts, attempt > 0)
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
