package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// The inbox (issue 15): conversations answers the user's conversations
// newest activity first, each with the preview of its newest item, unread
// and mention counts. What a page needs of each conversation beyond its
// document and read marker comes from the summaries the fan-out keeps as
// it delivers (package inbox), read for all of a page at once: no history
// query per conversation. When the user's inbox changes by something
// other than a message push (a read on another device, a mute), the
// user's connections get the item again as a conversation push.

// Summary is what the inbox keeps of one conversation (inbox.Summary).
type Summary interface {
	// Activity orders the list: the time of the newest message or event
	// (its ts, in nanoseconds since 1970), 0 before the first. Not a seq:
	// seqs of conversations in different partition streams do not
	// compare.
	Activity() uint64
	// Top is the highest seq of any item: the conversation's last_seq.
	Top() uint64
	// Last is the preview of the newest message or event.
	Last() *protocol.Last
	// Unread counts the plain messages after readSeq; exact is false
	// when the summary no longer holds them all.
	Unread(readSeq uint64) (n uint64, exact bool)
}

// Inbox reads the summaries in batches.
type Inbox interface {
	// Summaries returns the summaries of those of convs that have one.
	Summaries(ctx context.Context, convs []string) (map[string]Summary, error)
	// Mentions returns, for those of convs where uid was mentioned, the
	// seqs of the newest mentions, ascending.
	Mentions(ctx context.Context, uid string, convs []string) (map[string][]uint64, error)
	// Head returns conversations of uid that had activity recently and
	// a floor: every conversation of uid it does not name has an
	// activity at or below the floor (math.MaxUint64: the head vouches
	// for nothing and is to be seeded again).
	Head(ctx context.Context, uid string) (convs []string, floor uint64, err error)
	// MergeHead adds convs (the newest of uid's whole list, newest first,
	// with their activities acts) to uid's head; floor is the activity of
	// the newest conversation of the list after them.
	MergeHead(ctx context.Context, uid string, convs []string, acts []uint64, floor uint64) error
}

// headSeed is how many conversations a page read from the whole list
// gives a user's head that holds fewer.
const headSeed = 200

// inboxCursor is where a page of the inbox ends: the activity (a time,
// Summary.Activity) and id of its last conversation.
type inboxCursor struct {
	act  uint64
	conv string
}

// Cursors of version 1 held seqs as activities, which order nothing once
// conversations are in several partition streams: they are refused with
// a bad_request saying to start again from the first page.
const (
	inboxCursorPrefix   = "i2:"
	inboxCursorPrefixV1 = "i1:"
	maxInboxCursor      = (len(inboxCursorPrefix) + 21 + protocol.MaxIDLen + 2) / 3 * 4
)

func (c inboxCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(inboxCursorPrefix + strconv.FormatUint(c.act, 10) + ":" + c.conv))
}

// before reports whether an entry comes before c in the list's order:
// newer activity first, then by id.
func (c inboxCursor) before(o inboxCursor) bool {
	if c.act != o.act {
		return c.act > o.act
	}
	return c.conv < o.conv
}

func decodeInboxCursor(raw json.RawMessage) (*inboxCursor, *protocol.Error) {
	bad := protocol.Errorf(protocol.CodeBadRequest, "after must be the next cursor of a previous conversations reply")
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || len(s) > maxInboxCursor {
		return nil, bad
	}
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	if strings.HasPrefix(string(b), inboxCursorPrefixV1) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "after is a cursor of an older server version, which ordered the list differently: read the list again from the first page (no after)")
	}
	rest, ok := strings.CutPrefix(string(b), inboxCursorPrefix)
	act, conv, ok2 := strings.Cut(rest, ":")
	n, err := strconv.ParseUint(act, 10, 64)
	if !ok || !ok2 || err != nil || !protocol.ValidID(conv) {
		return nil, bad
	}
	return &inboxCursor{act: n, conv: conv}, nil
}

// inboxPage answers conversations from the inbox's summaries.
func (sess *session) inboxPage(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	after, perr := decodeInboxCursor(req.After)
	if perr != nil {
		return nil, perr
	}
	limit := protocol.DefaultConversationsLimit
	if req.Limit > 0 {
		limit = min(req.Limit, protocol.MaxConversationsLimit)
	}
	ids, hidden, err := sess.srv.consent.UserList(ctx, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	// The first pages come from the head: its conversations are the
	// newest, so the list starts with them in their order. When a page
	// needs more than it names, the whole list is read.
	headIDs, floor, err := sess.srv.inbox.Head(ctx, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	var cands []string
	for _, c := range headIDs {
		if _, ok := slices.BinarySearch(ids, c); ok {
			cands = append(cands, c)
		}
	}
	partial := len(cands) < len(ids)
	if len(cands) == 0 {
		cands, partial = ids, false
	}
	order, sums, err := sess.inboxOrder(ctx, cands, partial, floor)
	if err != nil {
		return nil, sess.fail(err)
	}
	if !partial {
		sess.seedHead(ctx, headIDs, floor, order)
	}
	// from is where the page starts in order.
	from := func(cur *inboxCursor) int {
		if cur == nil {
			return 0
		}
		i, _ := slices.BinarySearchFunc(order, *cur, func(e, t inboxCursor) int {
			if e.before(t) || e == t {
				return -1
			}
			return 1
		})
		return i
	}
	next := from(after)
	// pos is the last conversation passed: where the next page starts.
	pos := after
	head := appendHead(make([]byte, 0, 64+len(req.ID)), protocol.TypeConversations, req.ID)
	head = append(head, `,"conversations":[`...)
	tailMax := len(`],"more":false,"next":""}`) + maxInboxCursor
	p := newPage(sess.srv.pageBytes(), len(head), tailMax)
	for full := false; !full && p.len() < limit; {
		if next == len(order) {
			if !partial {
				break
			}
			// The head ran out: on from the whole list, after the last
			// conversation passed.
			if order, sums, err = sess.inboxOrder(ctx, ids, false, 0); err != nil {
				return nil, sess.fail(err)
			}
			partial, next = false, from(pos)
			sess.seedHead(ctx, headIDs, floor, order)
			continue
		}
		batch := order[next:min(next+limit-p.len(), len(order))]
		convs, err := sess.renderInbox(ctx, batch, hidden, sums)
		if err != nil {
			return nil, sess.fail(err)
		}
		for _, c := range convs {
			if c != nil {
				ok, err := p.add(c)
				if err != nil {
					return nil, sess.fail(err)
				}
				if !ok {
					full = true
					break
				}
			}
			pos = &order[next]
			next++
		}
	}
	tail := []byte(`],"more":false}`)
	if pos != nil && (next < len(order) || partial) {
		tail = protocol.AppendString([]byte(`],"more":true,"next":`), pos.encode())
		tail = append(tail, '}')
	}
	return encodedFrame(p.frame(head, false, tail)), nil
}

// inboxOrder reads the summaries of convs and orders them newest activity
// first; from a head (partial), only those above its floor: the others are
// not known to come before the conversations the head leaves out.
func (sess *session) inboxOrder(ctx context.Context, convs []string, partial bool, floor uint64) ([]inboxCursor, map[string]Summary, error) {
	sums, err := sess.srv.inbox.Summaries(ctx, convs)
	if err != nil {
		return nil, nil, err
	}
	order := make([]inboxCursor, 0, len(convs))
	for _, c := range convs {
		e := inboxCursor{conv: c}
		if s, ok := sums[c]; ok {
			e.act = s.Activity()
		}
		if !partial || (e.act > 0 && e.act > floor) {
			order = append(order, e)
		}
	}
	slices.SortFunc(order, func(a, b inboxCursor) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	return order, sums, nil
}

// seedHead gives a head that holds fewer than headSeed conversations, or
// vouches for nothing (floor math.MaxUint64), the newest of the whole
// list, so that the next first page is read from it. Failing is logged:
// the list is right either way, only slower.
func (sess *session) seedHead(ctx context.Context, head []string, floor uint64, order []inboxCursor) {
	if len(head) >= headSeed && floor != math.MaxUint64 {
		return
	}
	var seed []string
	var acts []uint64
	for _, e := range order[:min(headSeed, len(order))] {
		if e.act > 0 {
			seed, acts = append(seed, e.conv), append(acts, e.act)
		}
	}
	if len(seed) == 0 {
		return
	}
	var below uint64
	if len(order) > headSeed {
		below = order[headSeed].act
	}
	if err := sess.srv.inbox.MergeHead(ctx, sess.user, seed, acts, below); err != nil {
		sess.srv.cfg.Logger.Warn("inbox head not seeded", "user", sess.user, "err", err)
	}
}

// renderInbox renders a batch of the user's list, nil for those the user
// no longer sees; the documents and markers are read as before, the rest
// comes from sums and one batched read of the mentions.
func (sess *session) renderInbox(ctx context.Context, batch []inboxCursor, hidden map[string]uint64, sums map[string]Summary) ([]*protocol.Conversation, error) {
	ids := make([]string, len(batch))
	for i, e := range batch {
		ids[i] = e.conv
	}
	mentions, err := sess.srv.inbox.Mentions(ctx, sess.user, ids)
	if err != nil {
		return nil, err
	}
	return sess.renderEach(ctx, ids, func(ctx context.Context, conv string) (*protocol.Conversation, error) {
		c, err := sess.inboxItem(ctx, conv, sums[conv], mentions[conv])
		if c != nil && (isHidden(c, hidden) || sess.hiddenWithBlocked(c, hidden)) {
			c = nil
		}
		return c, err
	})
}

// inboxItem renders one conversation of the list from its summary (nil:
// none yet, read from history) and the user's mentions in it; nil when
// the user is no longer a member.
func (sess *session) inboxItem(ctx context.Context, conv string, sum Summary, mentions []uint64) (*protocol.Conversation, error) {
	d, err := sess.srv.consent.View(ctx, conv, sess.user)
	if errors.Is(err, ErrForbidden) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c := d.Protocol(sess.srv.cfg.MembersInline)
	c.State = d.StateFor(sess.user)
	c.Role = d.Role(sess.user)
	if c.State == protocol.ConvStateInvited {
		// Not a member: what was said in it is not the user's to see.
		return c, nil
	}
	if c.Mute, err = sess.muteOf(ctx, c.Conv); err != nil {
		return nil, err
	}
	if sum != nil {
		c.LastSeq = sum.Top()
		if c.Last = keptLast(c, sum.Last()); c.Last == nil && c.LastSeq > 0 {
			// The preview disappeared (ttl.go) or is older than the
			// retention (retain.go): the newest item left.
			if c.Last, err = sess.lastLive(ctx, c.Conv); err != nil {
				return nil, err
			}
			c.Last = keptLast(c, c.Last)
		}
	} else if c.LastSeq, err = sess.srv.msgs.Last(ctx, c.Conv); err != nil {
		return nil, err
	}
	// The marker includes what the user sent.
	if err := sess.srv.own.settle(ctx, sess.user, c.Conv); err != nil {
		return nil, err
	}
	if c.ReadSeq, err = sess.srv.markers.ReadSeq(ctx, c.Conv, sess.user); err != nil {
		return nil, err
	}
	if c.LastSeq <= c.ReadSeq {
		return c, nil
	}
	exact := false
	if sum != nil && c.RetentionDays == 0 {
		c.Unread, exact = sum.Unread(c.ReadSeq)
	}
	if !exact {
		// More unread than the summary holds, none yet, some that may
		// have disappeared (ttl) or a retention (retain.go): count them.
		if c.Unread, err = sess.srv.msgs.CountAfter(ctx, c.Conv, c.ReadSeq, maxUnread); err != nil {
			return nil, err
		}
	}
	for _, s := range mentions {
		if s > c.ReadSeq {
			c.MentionCount++
		}
	}
	if c.MentionCount > 0 && !exact {
		// Where messages may have disappeared, so may mentions.
		if c.MentionCount, err = sess.liveMentions(ctx, c, mentions); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// pushInboxItem sends the user's other connections conv's item again
// after something changed it that no other push shows them (a read marker
// moved, a mute). Failing to is logged: the next page has it.
func (sess *session) pushInboxItem(ctx context.Context, conv string) {
	if sess.srv.inbox == nil {
		return
	}
	sums, err := sess.srv.inbox.Summaries(ctx, []string{conv})
	var mentions map[string][]uint64
	if err == nil {
		mentions, err = sess.srv.inbox.Mentions(ctx, sess.user, []string{conv})
	}
	var c *protocol.Conversation
	if err == nil {
		c, err = sess.inboxItem(ctx, conv, sums[conv], mentions[conv])
	}
	if err != nil || c == nil {
		if err != nil {
			sess.srv.cfg.Logger.Warn("inbox item not pushed", "user", sess.user, "conv", conv, "err", err)
		}
		return
	}
	frame, _ := json.Marshal(protocol.ConversationFrame{Type: protocol.TypeConversation, Push: true, Inbox: true, Conversation: c})
	// Not to this connection: it made the change.
	msg := &nats.Msg{Subject: schema.User(sess.user, schema.EventConversation), Data: frame, Header: nats.Header{schema.HeaderOrigin: []string{sess.id}}}
	if err := sess.srv.nc.PublishMsg(msg); err != nil {
		sess.srv.cfg.Logger.Warn("inbox item not pushed", "user", sess.user, "conv", conv, "err", err)
	}
}
