package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/tracing"
)

const (
	dispatchers = 4
	// flushTimeout bounds the wait for the server to confirm a new
	// subscription.
	flushTimeout = 5 * time.Second
	// noticeCheckTimeout bounds the member-key read of one typing or read
	// notice.
	noticeCheckTimeout = 2 * time.Second
	// resyncQuiet is how long NATS must drop nothing more for a user
	// before the episode counts as over and the resync goes out.
	resyncQuiet = 100 * time.Millisecond
)

// userEntry is one user with connections on this gateway and the NATS
// subscription they share.
type userEntry struct {
	uid string
	// sessions is replaced, never changed in place, so dispatchers can
	// range over a copy taken under the hub's read lock.
	sessions []*session
	sub      *nats.Subscription
	d        *dispatcher   // the one that delivers this user's pushes
	ready    chan struct{} // closed once sub is active
	subErr   error
	blocks   blocks // the user's block list, set before ready
}

// dispatcher is one goroutine writing what NATS delivers on its channel
// to the sockets of the users hashed to it.
type dispatcher struct {
	ch chan *nats.Msg
	// kick wakes the goroutine when a user lost pushes while the channel
	// was already drained.
	kick chan struct{}
	mu   sync.Mutex
	// lost are the users whose pushes NATS dropped because ch was full;
	// each gets one resync once ch has drained.
	lost     map[*userEntry]struct{}
	hasLost  atomic.Bool
	lastLost atomic.Int64 // unix nanoseconds of the last drop reported
}

// hub holds the users connected to this gateway and dispatches what NATS
// delivers for them to their sockets. Typing and read notices take a queue
// of their own: checking them costs a KV read, which must never hold up a
// message.
type hub struct {
	srv     *Server
	mu      sync.RWMutex
	users   map[string]*userEntry
	subs    map[*nats.Subscription]*userEntry
	closed  bool
	ds      [dispatchers]*dispatcher
	notices chan *nats.Msg
	seed    maphash.Seed
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	// resyncing is set while a resync of every connection after a NATS
	// reconnect is under way: reconnects in a row make one round.
	resyncing atomic.Bool
	// life ends when the hub closes; the block list watch runs in it.
	life    context.Context
	endLife context.CancelFunc
}

func newHub(s *Server) *hub {
	h := &hub{
		srv: s, users: make(map[string]*userEntry), subs: make(map[*nats.Subscription]*userEntry),
		notices: make(chan *nats.Msg, s.cfg.NoticeBacklog),
		seed:    maphash.MakeSeed(), done: make(chan struct{}),
	}
	h.life, h.endLife = context.WithCancel(context.Background())
	for i := range h.ds {
		d := &dispatcher{ch: make(chan *nats.Msg, s.cfg.DispatchBacklog), kick: make(chan struct{}, 1), lost: make(map[*userEntry]struct{})}
		h.ds[i] = d
		h.wg.Add(1)
		go h.dispatch(d)
	}
	h.wg.Add(1)
	go h.checkNotices()
	return h
}

// register adds an authenticated session. The first session of a user
// subscribes to the user's subject and waits until the server has the
// subscription, so nothing published after welcome is missed; later ones
// wait for that, until ctx ends.
func (h *hub) register(ctx context.Context, sess *session) (*userEntry, error) {
	uid := sess.user
	h.mu.Lock()
	e := h.users[uid]
	first := e == nil
	if first {
		e = &userEntry{uid: uid, ready: make(chan struct{}), d: h.ds[maphash.String(h.seed, uid)%dispatchers]}
		h.users[uid] = e
	}
	if len(e.sessions) >= h.srv.cfg.MaxConnsPerUser {
		h.mu.Unlock()
		return nil, errTooManyConns
	}
	e.sessions = append(slices.Clip(e.sessions), sess)
	h.mu.Unlock()

	if first {
		// The block list first: no push may come before it filters them.
		err := h.loadBlocks(ctx, e)
		var sub *nats.Subscription
		if err == nil {
			sub, err = h.srv.nc.ChanSubscribe(schema.UserAll(uid), e.d.ch)
		}
		if err == nil {
			h.mu.Lock()
			h.subs[sub] = e
			h.mu.Unlock()
			fctx, cancel := context.WithTimeout(ctx, flushTimeout)
			err = h.srv.nc.FlushWithContext(fctx)
			cancel()
		}
		e.sub, e.subErr = sub, err
		close(e.ready)
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			h.unregister(sess, e)
			return nil, fmt.Errorf("wait for the subscription of %s: %w", uid, ctx.Err())
		}
	}
	if e.subErr != nil {
		h.unregister(sess, e)
		return nil, fmt.Errorf("subscribe %s: %w", uid, e.subErr)
	}
	return e, nil
}

// unregister removes a session; the last one of a user drops the
// subscription.
func (h *hub) unregister(sess *session, e *userEntry) {
	h.mu.Lock()
	i := slices.Index(e.sessions, sess)
	if i < 0 {
		h.mu.Unlock()
		return
	}
	e.sessions = slices.Delete(slices.Clone(e.sessions), i, i+1)
	last := len(e.sessions) == 0
	if last && h.users[e.uid] == e {
		delete(h.users, e.uid)
	}
	h.mu.Unlock()
	if last {
		<-e.ready
		h.drop(e)
	}
}

// drop unsubscribes e's subscription and forgets it.
func (h *hub) drop(e *userEntry) {
	if e.sub == nil {
		return
	}
	_ = e.sub.Unsubscribe()
	h.mu.Lock()
	delete(h.subs, e.sub)
	h.mu.Unlock()
}

func (h *hub) close() {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		all := make([]*userEntry, 0, len(h.users))
		for uid, e := range h.users {
			all = append(all, e)
			delete(h.users, uid)
		}
		h.mu.Unlock()
		for _, e := range all {
			<-e.ready
			h.drop(e)
		}
		h.endLife()
		close(h.done)
		h.wg.Wait()
	})
}

func (h *hub) dispatch(d *dispatcher) {
	defer h.wg.Done()
	var quiet <-chan time.Time
	for {
		select {
		case <-h.done:
			return
		case m := <-d.ch:
			h.deliver(m)
		case <-d.kick:
		case <-quiet:
			quiet = nil
		}
		// The episode is over once the backlog has drained and NATS has
		// dropped nothing for resyncQuiet: one resync then, after every
		// push that did get through, rather than one per drop.
		if !d.hasLost.Load() || len(d.ch) > 0 {
			continue
		}
		if since := time.Since(time.Unix(0, d.lastLost.Load())); since >= resyncQuiet {
			h.resyncLost(d)
		} else if quiet == nil {
			quiet = time.After(resyncQuiet - since)
		}
	}
}

// deliver writes one pushed frame to every local connection of its user,
// except the connection that caused it. Typing, read and delivered
// notices go to their own queue, and are dropped when it is full: they are ephemeral.
func (h *hub) deliver(m *nats.Msg) {
	uid, event := schema.SplitUser(m.Subject)
	if event == schema.EventKick {
		h.closeUser(uid)
		return
	}
	if event == schema.EventErased {
		h.closeErased(uid)
		return
	}
	if event == schema.EventTyping || event == schema.EventRead || event == schema.EventDelivered {
		select {
		case h.notices <- m:
		default:
			inc(h.srv.metrics.NoticesDropped)
		}
		return
	}
	h.push(uid, m)
}

// closeUser closes every connection of uid on this gateway with
// protocol.CloseByOperator: an operator asked for it (natter admin user kick)
// on schema.UserKick, which only the operator's NATS user may publish.
func (h *hub) closeUser(uid string) {
	h.mu.RLock()
	var sessions []*session
	if e := h.users[uid]; e != nil {
		sessions = e.sessions
	}
	h.mu.RUnlock()
	for _, s := range sessions {
		s.closeWith(protocol.CloseByOperator)
	}
	if len(sessions) > 0 {
		h.srv.cfg.Logger.Info("an operator closed a user's connections", "user", uid, "connections", len(sessions))
	}
}

// push writes m's frame to uid's connections but the one that caused it.
func (h *hub) push(uid string, m *nats.Msg) {
	h.mu.RLock()
	e := h.users[uid]
	var sessions []*session
	if e != nil {
		sessions = e.sessions
	}
	h.mu.RUnlock()
	if e != nil && e.hides(m) {
		return
	}
	var origin string
	var span trace.Span
	if m.Header != nil {
		origin = m.Header.Get(schema.HeaderOrigin)
		if h.srv.tracer != nil {
			span = h.startPush(m)
		}
	}
	q := queued{data: m.Data}
	if len(sessions) > 0 {
		q.data = h.srv.pushWithFiles(m.Data)
	}
	if len(sessions) > 1 && len(q.data) >= deflateThreshold {
		// Compressed at most once for all of them.
		q.shared = new(sharedFrame)
	}
	pushed := 0
	for _, s := range sessions {
		if s.id != origin {
			s.pushFrame(q, false)
			pushed++
		}
	}
	if span != nil {
		span.SetAttributes(tracing.KeySockets.Int(pushed))
		span.End()
	}
}

// checkNotices delivers typing and read notices once checked against the
// member key; a stalled read delays only other notices.
func (h *hub) checkNotices() {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			return
		case m := <-h.notices:
			uid, _ := schema.SplitUser(m.Subject)
			if h.stillMember(m.Data, uid) {
				h.push(uid, m)
			}
		}
	}
}

// stillMember checks a typing or read notice against the member key before
// it reaches uid. Those notices travel outside the stream, so the fan-out
// may expand one with a member list that has not yet seen a removal; the
// member key is gone before remove_member is acknowledged, so a removed
// user gets nothing more.
func (h *hub) stillMember(frame []byte, uid string) bool {
	var n struct {
		Conv string `json:"conv"`
	}
	if json.Unmarshal(frame, &n) != nil || !protocol.ValidID(n.Conv) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), noticeCheckTimeout)
	defer cancel()
	ok, err := h.srv.convs.IsMember(ctx, n.Conv, uid)
	return err == nil && ok
}

// asyncError is the NATS connection's error handler: a slow consumer on a
// user's subscription means NATS dropped pushes for that user, who is
// told to re-sync once the backlog has drained.
func (h *hub) asyncError(sub *nats.Subscription, err error) {
	if sub == nil || !errors.Is(err, nats.ErrSlowConsumer) {
		return
	}
	h.mu.RLock()
	e := h.subs[sub]
	h.mu.RUnlock()
	if e == nil {
		return
	}
	inc(h.srv.metrics.PushesDropped)
	d := e.d
	d.mu.Lock()
	d.lost[e] = struct{}{}
	d.lastLost.Store(time.Now().UnixNano())
	d.hasLost.Store(true)
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// resyncLost tells each connection of the users that lost pushes to
// re-sync, once per episode.
func (h *hub) resyncLost(d *dispatcher) {
	d.mu.Lock()
	lost := d.lost
	d.lost = make(map[*userEntry]struct{})
	d.hasLost.Store(false)
	d.mu.Unlock()
	frame := resyncFrame(protocol.ResyncDropped)
	for e := range lost {
		h.mu.RLock()
		sessions := e.sessions
		h.mu.RUnlock()
		for _, s := range sessions {
			s.push(frame)
		}
	}
}

// reconnected is the NATS connection's reconnect handler: core-NATS pushes
// in flight while it was down are lost, so every connection is told to
// re-sync, once the server has the resent subscriptions.
func (h *hub) reconnected() {
	if !h.resyncing.CompareAndSwap(false, true) {
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.resyncing.Store(false)
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		// After the flush the server has every subscription again, so a
		// sync the resync causes cannot miss a push published before it.
		if err := h.srv.nc.FlushTimeout(flushTimeout); err != nil {
			h.srv.cfg.Logger.Warn("flush after NATS reconnect failed; resyncing anyway", "err", err)
		}
		h.resyncing.Store(false)
		frame := resyncFrame(protocol.ResyncReconnect)
		h.mu.RLock()
		var all []*session
		for _, e := range h.users {
			all = append(all, e.sessions...)
		}
		h.mu.RUnlock()
		for _, s := range all {
			s.push(frame)
		}
	}()
}

func resyncFrame(reason string) []byte {
	b, _ := json.Marshal(&protocol.Resync{Type: protocol.TypeResync, Reason: reason})
	return b
}
