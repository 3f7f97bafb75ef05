package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Blocking (docs/protocol.md, "Blocking"). Each connected user's block
// list is held by their userEntry: read when the user's first connection
// registers, kept fresh by one watch of every block list per gateway, and
// dropped with the user's last connection, so memory follows the
// connected users. Pushes from a blocked user are dropped for the blocker
// without a read; notices the blocker causes (typing, read) carry the
// list so the fan-out spares the blocked users.

// BlockList is one user's blocked users, sorted, at a revision of the
// list (0: never written).
type BlockList struct {
	Users []string
	Rev   uint64
}

// Blocks keeps block lists and how often users are added by others.
type Blocks interface {
	// Block adds other to uid's block list (ErrTooLarge past the bound,
	// ErrBadRequest for uid itself).
	Block(ctx context.Context, uid, other string) error
	// Unblock removes other from uid's block list.
	Unblock(ctx context.Context, uid, other string) error
	// Blocked returns uid's block list.
	Blocked(ctx context.Context, uid string) (BlockList, error)
	// HasBlocked reports whether uid blocked other: one read.
	HasBlocked(ctx context.Context, uid, other string) (bool, error)
	// Watch calls fn with every block list change made after it returns,
	// in order, until ctx ends.
	Watch(ctx context.Context, fn func(uid string, l BlockList)) error
	// NoteAdded counts one add of uid by someone else, or returns
	// ErrRateLimited when uid was added limit times within window.
	NoteAdded(ctx context.Context, uid string, limit int, window time.Duration) error
}

// addWindow is the window of Config.MaxAddedPerHour.
const addWindow = time.Hour

// checkWidth bounds the block and add-limit checks of one request run at
// once.
const checkWidth = 16

// blockSet is a user's block list as a connection filters with it.
type blockSet struct {
	users map[string]struct{}
	rev   uint64
}

func newBlockSet(l BlockList) *blockSet {
	s := &blockSet{users: make(map[string]struct{}, len(l.Users)), rev: l.Rev}
	for _, u := range l.Users {
		s.users[u] = struct{}{}
	}
	return s
}

// blocks holds a userEntry's block list; nil until read.
type blocks struct{ p atomic.Pointer[blockSet] }

// set installs l unless a newer revision is held already.
func (b *blocks) set(l BlockList) bool {
	next := newBlockSet(l)
	for {
		cur := b.p.Load()
		if cur != nil && cur.rev >= l.Rev {
			return false
		}
		if b.p.CompareAndSwap(cur, next) {
			return true
		}
	}
}

// has reports whether uid is blocked.
func (b *blocks) has(uid string) bool {
	s := b.p.Load()
	if s == nil {
		return false
	}
	_, ok := s.users[uid]
	return ok
}

// list returns the blocked users, sorted; nil when none.
func (b *blocks) list() []string {
	s := b.p.Load()
	if s == nil || len(s.users) == 0 {
		return nil
	}
	out := make([]string, 0, len(s.users))
	for u := range s.users {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// watchBlocks starts the gateway's watch of block lists; it ends with ctx.
func (h *hub) watchBlocks(ctx context.Context) error {
	return h.srv.blocks.Watch(ctx, h.blockChanged)
}

// blockChanged applies a change of uid's block list when uid is connected
// here, and tells uid's connections the new list.
func (h *hub) blockChanged(uid string, l BlockList) {
	h.mu.RLock()
	e := h.users[uid]
	h.mu.RUnlock()
	if e == nil || !e.blocks.set(l) {
		return
	}
	h.pushBlocked(e, l, nil)
}

// pushBlocked tells e's connections but except the block list l. Whoever
// first sets a new list on e pushes it (the watch, or a connection that
// read it afresh before the watch brought it): the other cannot tell the
// list changed, and the user's other devices must hear of it once.
func (h *hub) pushBlocked(e *userEntry, l BlockList, except *session) {
	h.mu.RLock()
	sessions := slices.Clone(e.sessions)
	h.mu.RUnlock()
	users := l.Users
	if users == nil {
		users = []string{}
	}
	frame, _ := json.Marshal(&protocol.BlockedFrame{Type: protocol.TypeBlocked, Push: true, Users: users})
	for _, s := range sessions {
		if s != except {
			s.push(frame)
		}
	}
}

// loadBlocks reads e's block list when its first connection registers.
func (h *hub) loadBlocks(ctx context.Context, e *userEntry) error {
	l, err := h.srv.blocks.Blocked(ctx, e.uid)
	if err != nil {
		return err
	}
	e.blocks.set(l)
	return nil
}

// hides reports whether m, pushed to e's user, comes from a user they
// blocked: messages by their sender, typing, read, delivered and presence
// by their user. Users who blocked nobody pay nothing.
func (e *userEntry) hides(m *nats.Msg) bool {
	s := e.blocks.p.Load()
	if s == nil || len(s.users) == 0 {
		return false
	}
	var key string
	switch _, event := schema.SplitUser(m.Subject); event {
	case schema.EventMessage:
		key = "sender"
	case schema.EventTyping, schema.EventRead, schema.EventDelivered, schema.EventPresence:
		key = "user"
	default:
		return false
	}
	from, ok := topField(m.Data, key)
	if !ok {
		return false
	}
	_, blocked := s.users[from]
	return blocked
}

// topField returns the string value of key in the JSON object frame,
// scanning only up to it: the fan-out writes sender before body, so a large
// message is not decoded. Keys are compared as written (no escapes).
func topField(b []byte, key string) (string, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		end := stringEnd(b, i)
		if end < 0 {
			return "", false
		}
		k := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		i = skipSpace(b, i+1)
		if string(k) == key {
			if i >= len(b) || b[i] != '"' {
				return "", false
			}
			end := stringEnd(b, i)
			if end < 0 {
				return "", false
			}
			if !slices.Contains(b[i+1:end-1], '\\') {
				return string(b[i+1 : end-1]), true
			}
			var v string
			if json.Unmarshal(b[i:end], &v) != nil {
				return "", false
			}
			return v, true
		}
		if i = valueEnd(b, i); i < 0 {
			return "", false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ',' {
			return "", false
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string starting at b[i] == '"',
// or -1.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// valueEnd returns the index after the value starting at b[i], or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = stringEnd(b, i); i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return i
	}
}

// blockedByMe returns the session user's block list, for the notices they
// cause.
func (sess *session) blockedByMe() []string {
	if sess.entry == nil {
		return nil
	}
	return sess.entry.blocks.list()
}

// block and unblock change the user's block list and answer it.
func (sess *session) block(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	return sess.changeBlock(ctx, req, sess.srv.blocks.Block)
}

func (sess *session) unblock(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	return sess.changeBlock(ctx, req, sess.srv.blocks.Unblock)
}

func (sess *session) changeBlock(ctx context.Context, req *protocol.Request, change func(context.Context, string, string) error) (any, *protocol.Error) {
	if !protocol.ValidID(req.User) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "user must match [A-Za-z0-9_-]{1,64}")
	}
	if err := change(ctx, sess.user, req.User); err != nil {
		return nil, sess.fail(err)
	}
	// The reply reads the list afresh: the watch may not have brought the
	// change to this gateway yet.
	return sess.blocked(ctx, req)
}

// blocked answers the user's block list, read from the store.
func (sess *session) blocked(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	l, err := sess.srv.blocks.Blocked(ctx, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	if sess.entry != nil && sess.entry.blocks.set(l) {
		sess.srv.hub.pushBlocked(sess.entry, l, sess)
	}
	users := l.Users
	if users == nil {
		users = []string{}
	}
	return &protocol.BlockedFrame{Type: protocol.TypeBlocked, ID: req.ID, Users: users}, nil
}

// hiddenFrom reports whether uid blocked the session's user, who then
// gets no answer about uid's presence.
func (sess *session) hiddenFrom(ctx context.Context, uid string) (bool, *protocol.Error) {
	if uid == sess.user {
		return false, nil
	}
	blocked, err := sess.srv.blocks.HasBlocked(ctx, uid, sess.user)
	if err != nil {
		return false, sess.fail(err)
	}
	return blocked, nil
}

// checkAdds refuses a create or add_member (to conv, else "") that names
// too many users, names a user who blocked the actor, or adds a user
// others added too often within the hour (groups only: a direct
// conversation is one per pair). Every check of the request, membership
// in conv included, is made before any add is counted: an outsider cannot
// use up someone's adds.
func (sess *session) checkAdds(ctx context.Context, kind, conv string, users []string) *protocol.Error {
	if len(users) > protocol.MaxUsersPerRequest {
		return protocol.Errorf(protocol.CodeBadRequest, "name at most %d users in one request", protocol.MaxUsersPerRequest)
	}
	if conv != "" {
		if perr := sess.checkConv(ctx, conv); perr != nil {
			return perr
		}
	}
	others := slices.Compact(slices.Sorted(slices.Values(users)))
	others = slices.DeleteFunc(others, func(u string) bool { return u == sess.user })
	refused := make([]bool, len(others))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(checkWidth)
	for i, u := range others {
		g.Go(func() error {
			b, err := sess.srv.blocks.HasBlocked(gctx, u, sess.user)
			refused[i] = b
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return sess.fail(err)
	}
	if i := slices.Index(refused, true); i >= 0 {
		// Worded as any refusal of this user, not as a block: the adder
		// learns they cannot, not why.
		if kind == protocol.ConversationDirect {
			return protocol.Errorf(protocol.CodeForbidden, "you cannot start a conversation with %s", others[i])
		}
		return protocol.Errorf(protocol.CodeForbidden, "you cannot add %s", others[i])
	}
	if kind != protocol.ConversationGroup {
		return nil
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(checkWidth)
	for _, u := range others {
		g.Go(func() error {
			// The bound holds back strangers; a contact's add neither
			// counts nor is refused, so what strangers used up never
			// keeps the user's friends from adding them.
			if ok, err := sess.srv.consent.IsContact(gctx, sess.user, u); err != nil || ok {
				return err
			}
			return sess.srv.blocks.NoteAdded(gctx, u, sess.srv.cfg.MaxAddedPerHour, addWindow)
		})
	}
	if err := g.Wait(); err != nil {
		if errors.Is(err, ErrRateLimited) {
			return protocol.Errorf(protocol.CodeRateLimited, "%s", err.Error())
		}
		return sess.fail(err)
	}
	return nil
}

// hiddenWithBlocked reports whether c is a direct conversation the user
// hid whose other member they blocked: a new message from them does not
// bring it back.
func (sess *session) hiddenWithBlocked(c *protocol.Conversation, hidden map[string]uint64) bool {
	if _, ok := hidden[c.Conv]; !ok || c.Kind != protocol.ConversationDirect || sess.entry == nil {
		return false
	}
	for _, u := range c.Members {
		if u != sess.user && sess.entry.blocks.has(u) {
			return true
		}
	}
	return false
}
