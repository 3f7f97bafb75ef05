package gateway

import (
	"container/list"
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Membership without a read per send (issue 19). The gateway keeps, per
// (conversation, user) that sent through it, the seq of the conversation's
// last membership event its view of the user's membership was read at
// (conversation.Store.MemberView reads that seq first, then the document).
// A send whose view is kept reads nothing: it publishes with
// Nats-Expected-Last-Subject-Sequence of that seq on the conversation's
// stored membership subject (schema.Layout.StoredMember, carried in the view), and JetStream stores
// the message only if no membership event was stored since. Every change
// of who may send (create, add, remove, leave, accept, decline, withdraw)
// is a document change whose event is stored before the change is
// acknowledged, so a member removed by any gateway cannot publish once
// remove_member was acked: the publish is refused (wrong last sequence),
// the view is read again and the send decided again, which refuses it.
// Blocks do not decide who may send (they hide messages from the blocker
// on delivery), and hidden conversations are the user's own list.
//
// Only views of members who accepted are kept: a non-member's send reads
// every time (and is refused), and a request's recipient accepts it by
// sending, once. The other per-conversation requests (sync, history,
// typing, read, members, ...) still read the member key: they publish
// nothing to the stream that could carry the precondition, and a read
// answered from a view could not be checked against a newer membership.

// MemberViews reads a user's membership of a conversation together with
// the seq of the conversation's last membership event, in that order of
// reads that makes the pair sound (conversation.Store.MemberView).
type MemberViews interface {
	MemberView(ctx context.Context, conv, uid string) (MemberView, error)
}

// MemberView is uid's membership of a conversation as of the membership
// event at Seq (0: none).
type MemberView struct {
	Subject string // the stored membership subject Seq is the last of
	Seq     uint64
	Member  bool
	Pending bool  // a member who has yet to accept the request
	Muted   bool  // a member who may not send: the group is read-only
	TTL     int64 // the conversation's ttl in seconds (ttl.go)
}

// sendView is what a send knows of its sender's membership: when checked,
// the seq of the membership event the publish must find last.
type sendView struct {
	checked bool
	subject string
	seq     uint64
	ttl     int64 // the conversation's ttl as of the view (ttl.go)
}

// viewRetries bounds how often one send reads its view again after
// JetStream refused it as stale; a membership that changes that often
// answers the error, and the client retries.
const viewRetries = 3

// While a clustered stream still has another publish with a precondition
// on the same membership subject in flight, JetStream refuses the next at
// once rather than queue it (error 10164): the publish is tried again,
// without a read, after busyWait doubling up to busyMaxWait with jitter,
// for up to Config.PublishRetry like a leader change. One conversation's
// sends are so serialized on the stream leader's proposals.
const (
	busyWait    = time.Millisecond
	busyMaxWait = 8 * time.Millisecond
)

// jsErrWrongLastSequenceInFlight is nats-server's
// JSStreamWrongLastSequenceConstantErr, which nats.go does not name.
const jsErrWrongLastSequenceInFlight jetstream.ErrorCode = 10164

// views is the gateway's bounded cache of send views: an LRU of
// (conversation, user) to the seq of the view.
type views struct {
	mu  sync.Mutex
	max int
	m   map[viewKey]*list.Element
	lru list.List // of *viewEntry, the most recently used first
}

type viewKey struct{ conv, uid string }

type viewEntry struct {
	key     viewKey
	subject string
	seq     uint64
	ttl     int64
}

func newViews(max int) *views {
	return &views{max: max, m: make(map[viewKey]*list.Element)}
}

func (c *views) get(k viewKey) (sendView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return sendView{}, false
	}
	c.lru.MoveToFront(e)
	v := e.Value.(*viewEntry)
	return sendView{checked: true, subject: v.subject, seq: v.seq, ttl: v.ttl}, true
}

func (c *views) put(k viewKey, subject string, seq uint64, ttl int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		v := e.Value.(*viewEntry)
		v.subject, v.seq, v.ttl = subject, seq, ttl
		c.lru.MoveToFront(e)
		return
	}
	c.m[k] = c.lru.PushFront(&viewEntry{key: k, subject: subject, seq: seq, ttl: ttl})
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*viewEntry).key)
	}
}

func (c *views) drop(k viewKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.lru.Remove(e)
		delete(c.m, k)
	}
}

func (c *views) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// senderView decides whether the user may send in conv: from a kept view,
// else by reading one. Without MemberViews it reads the member key, as
// every send did before, and the publish carries no precondition.
func (sess *session) senderView(ctx context.Context, conv string) (sendView, *protocol.Error) {
	if sess.srv.views == nil {
		pending, perr := sess.member(ctx, conv)
		if perr != nil {
			return sendView{}, perr
		}
		if pending {
			// Sending in a message request accepts it.
			if perr := sess.acceptBySending(ctx, conv); perr != nil {
				return sendView{}, perr
			}
		}
		ttl, perr := sess.checkPosting(ctx, conv)
		return sendView{ttl: ttl}, perr
	}
	if v, ok := sess.srv.views.get(viewKey{conv, sess.user}); ok {
		return v, nil
	}
	return sess.readView(ctx, conv)
}

// readView reads the user's view of conv and keeps it if the user is a
// member who accepted. Sending in a message request accepts it, which
// stores an event: the view is read again after.
func (sess *session) readView(ctx context.Context, conv string) (sendView, *protocol.Error) {
	k := viewKey{conv, sess.user}
	accepted := false
	for {
		inc(sess.srv.metrics.MemberViewReads)
		v, err := sess.srv.memberViews.MemberView(ctx, conv, sess.user)
		if err != nil {
			return sendView{}, sess.fail(err)
		}
		switch {
		case !v.Member:
			sess.srv.views.drop(k)
			return sendView{}, toProtocol(ErrForbidden)
		case v.Muted:
			// Not kept, like a non-member's: refused every time.
			sess.srv.views.drop(k)
			return sendView{}, errReadOnly()
		case !v.Pending:
			sess.srv.views.put(k, v.Subject, v.Seq, v.TTL)
			return sendView{checked: true, subject: v.Subject, seq: v.Seq, ttl: v.TTL}, nil
		case accepted:
			// Accepted, and the document still says request: a
			// change raced it. Send as a member without keeping it.
			return sendView{checked: true, subject: v.Subject, seq: v.Seq, ttl: v.TTL}, nil
		}
		if perr := sess.acceptBySending(ctx, conv); perr != nil {
			return sendView{}, perr
		}
		accepted = true
	}
}

// publishAsMember publishes msg, a send of the user in conv, under the
// precondition of v, which msg carries (newSendHeader): when membership
// changed since v, JetStream refuses it, and the send is decided again on a view read now; when that view
// has another ttl (a ttl change refused the old one), restamp stamps
// msg with it (ttl.go).
func (sess *session) publishAsMember(ctx context.Context, msg *nats.Msg, conv string, v sendView, restamp func(ttl int64) *protocol.Error) (*jetstream.PubAck, *protocol.Error) {
	stale := 0
	wait, busyUntil := busyWait, time.Time{}
	// msg carries v's precondition already (newSendHeader).
	for {
		ack, err := sess.publish(ctx, msg)
		if err == nil {
			return ack, nil
		}
		var apiErr *jetstream.APIError
		if v.checked && errors.As(err, &apiErr) {
			switch {
			// 10071 only: a replicated stream's 10164 is another publish
			// on the subject in flight, not a stale view (below).
			case apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence && stale < viewRetries:
				stale++
				inc(sess.srv.metrics.StaleViews)
				ttl := v.ttl
				var perr *protocol.Error
				if v, perr = sess.readView(ctx, conv); perr != nil {
					return nil, perr
				}
				setHeader(msg.Header, schema.HeaderExpectedLastSubjectSeq, strconv.FormatUint(v.seq, 10))
				setHeader(msg.Header, schema.HeaderExpectedLastSubjectSeqSubject, v.subject)
				if v.ttl != ttl {
					if perr := restamp(v.ttl); perr != nil {
						return nil, perr
					}
				}
				continue
			case apiErr.ErrorCode == jsErrWrongLastSequenceInFlight:
				if busyUntil.IsZero() {
					busyUntil = time.Now().Add(sess.srv.cfg.PublishRetry)
				}
				if time.Now().Before(busyUntil) {
					inc(sess.srv.metrics.BusyViews)
					time.Sleep(wait/2 + rand.N(wait))
					wait = min(2*wait, busyMaxWait)
					continue
				}
			}
		}
		inc(sess.srv.metrics.PublishErrors)
		return nil, sess.fail(err)
	}
}
