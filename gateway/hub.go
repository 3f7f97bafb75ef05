package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

const (
	dispatchers     = 4
	dispatchBacklog = 1 << 16
	// flushTimeout bounds the wait for the server to confirm a new
	// subscription.
	flushTimeout = 5 * time.Second
)

// userEntry is one user with connections on this gateway and the NATS
// subscription they share.
type userEntry struct {
	uid string
	// sessions is replaced, never changed in place, so dispatchers can
	// range over a copy taken under the hub's read lock.
	sessions []*session
	sub      *nats.Subscription
	ready    chan struct{} // closed once sub is active
	subErr   error
}

// hub holds the users connected to this gateway and dispatches what NATS
// delivers for them to their sockets.
type hub struct {
	srv   *Server
	mu    sync.RWMutex
	users map[string]*userEntry
	chans [dispatchers]chan *nats.Msg
	seed  maphash.Seed
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func newHub(s *Server) *hub {
	h := &hub{srv: s, users: make(map[string]*userEntry), seed: maphash.MakeSeed(), done: make(chan struct{})}
	for i := range h.chans {
		h.chans[i] = make(chan *nats.Msg, dispatchBacklog)
		h.wg.Add(1)
		go h.dispatch(h.chans[i])
	}
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
		e = &userEntry{uid: uid, ready: make(chan struct{})}
		h.users[uid] = e
	}
	if len(e.sessions) >= h.srv.cfg.MaxConnsPerUser {
		h.mu.Unlock()
		return nil, errTooManyConns
	}
	e.sessions = append(slices.Clip(e.sessions), sess)
	h.mu.Unlock()

	if first {
		ch := h.chans[maphash.String(h.seed, uid)%dispatchers]
		sub, err := h.srv.nc.ChanSubscribe(schema.UserAll(uid), ch)
		if err == nil {
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
		if e.sub != nil {
			_ = e.sub.Unsubscribe()
		}
	}
}

func (h *hub) close() {
	h.once.Do(func() {
		h.mu.Lock()
		for uid, e := range h.users {
			<-e.ready
			if e.sub != nil {
				_ = e.sub.Unsubscribe()
			}
			delete(h.users, uid)
		}
		h.mu.Unlock()
		close(h.done)
		h.wg.Wait()
	})
}

func (h *hub) dispatch(ch chan *nats.Msg) {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			return
		case m := <-ch:
			h.deliver(m)
		}
	}
}

// deliver writes one pushed frame to every local connection of its user,
// except the connection that caused it.
func (h *hub) deliver(m *nats.Msg) {
	uid, event := schema.SplitUser(m.Subject)
	h.mu.RLock()
	e := h.users[uid]
	var sessions []*session
	if e != nil {
		sessions = e.sessions
	}
	h.mu.RUnlock()
	if e == nil {
		return
	}
	if (event == schema.EventTyping || event == schema.EventRead) && !h.stillMember(m.Data, uid) {
		return
	}
	var origin string
	if m.Header != nil {
		origin = m.Header.Get(schema.HeaderOrigin)
	}
	for _, s := range sessions {
		if s.id != origin {
			s.push(m.Data)
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ok, err := h.srv.convs.IsMember(ctx, n.Conv, uid)
	return err == nil && ok
}
