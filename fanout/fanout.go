// Package fanout turns what the CHAT stream stores into deliveries: every
// message to every member's user subject, membership events to the members
// concerned, and typing notices to the other members. The stream is split
// into partitions by conversation (schema.Layout), each with its durable
// consumer; one worker at a time holds each (a pinned priority group), so
// a conversation's deliveries keep stream order and membership changes
// take effect exactly between the messages they came between. The
// processes that run a Fanout share the partitions out (partitions.go).
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/pinned"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Config tunes the fan-out. The zero value is filled with defaults.
type Config struct {
	// CacheSize bounds how many conversations' member lists are kept.
	CacheSize int
	// CacheTTL bounds how long a member list is trusted without a
	// membership event.
	CacheTTL time.Duration
	// MembersInline is how many members a conversation push lists inline.
	MembersInline int
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// Now is the clock.
	Now func() time.Time
	// Delay, if set, observes in seconds how long each delivered message
	// waited from its store in CHAT to its deliveries' publish: the
	// fan-out's share of send→deliver (a prometheus.Histogram fits).
	Delay interface{ Observe(float64) }
	// Tracer, optional, records a span per stored message handled and one
	// per message's deliveries, which carry its context to the gateways
	// (tracing.go); nil, the default, records nothing.
	Tracer trace.Tracer
	// Inbox, optional, is told every item before it is delivered, so
	// that a member who got the push and then reads the conversation
	// list finds it there (inbox.Store).
	Inbox Inbox
}

// Inbox keeps the conversation lists' summaries (inbox.Store).
type Inbox interface {
	// Note takes m, the next item of its conversation in stream order,
	// into the summaries; members are the conversation's.
	Note(ctx context.Context, m *protocol.Message, members []string) (bool, error)
	// Summary returns conv's last_seq and preview as noted so far; ok
	// is false when nothing was noted (a conversation older than the
	// inbox, or without messages).
	Summary(ctx context.Context, conv string) (top uint64, last *protocol.Last, ok bool, err error)
	// Touch puts conv in front of the users' lists: they joined it.
	Touch(ctx context.Context, conv string, users []string) error
}

func (c Config) withDefaults() Config {
	if c.CacheSize <= 0 {
		c.CacheSize = 100_000
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = time.Minute
	}
	if c.MembersInline <= 0 {
		c.MembersInline = 100
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Fanout is the delivery worker.
type Fanout struct {
	cfg   Config
	nc    *nats.Conn
	js    jetstream.JetStream
	last  Messages
	cache cache
	prevs *prevs // of the consume loop, which is serial
	buf   []byte // frame buffer of the consume loop
	// stopping closes when the consume loop is told to stop: a delivery
	// to thousands of subjects gives up between publishes (see
	// deliverFrom) instead of holding up the process's shutdown.
	stopping <-chan struct{}
}

// New returns a Fanout; Run starts it. msgs is read for conversation
// pushes' last_seq and for a message push's prev when the fan-out does not
// remember it (see prevs).
func New(cfg Config, nc *nats.Conn, js jetstream.JetStream, convs *conversation.Store, msgs Messages) *Fanout {
	cfg = cfg.withDefaults()
	return &Fanout{
		cfg: cfg, nc: nc, js: js, last: msgs,
		cache: newCache(cfg, convs),
		prevs: newPrevs(msgs, cfg.CacheSize),
	}
}

// Run delivers until ctx ends, then stops consuming and returns once no
// handler runs any more. Every gateway process runs one: the processes
// share the partitions out, and each partition's pinned consumer lets one
// worker at a time deliver it.
func (f *Fanout) Run(ctx context.Context) error {
	typing, err := f.nc.QueueSubscribe(schema.TypingWildcard, "fanout", f.onTyping)
	if err != nil {
		return fmt.Errorf("%w: typing: %w", ErrSubscribe, err)
	}
	defer func() { _ = typing.Unsubscribe() }()
	reads, err := f.nc.QueueSubscribe(schema.ReadWildcard, "fanout", f.onRead)
	if err != nil {
		return fmt.Errorf("%w: reads: %w", ErrSubscribe, err)
	}
	defer func() { _ = reads.Unsubscribe() }()
	delivered, err := f.nc.QueueSubscribe(schema.DeliveredWildcard, "fanout", f.onDelivered)
	if err != nil {
		return fmt.Errorf("%w: delivered: %w", ErrSubscribe, err)
	}
	defer func() { _ = delivered.Unsubscribe() }()
	l, err := f.runUnpartitioned(ctx)
	if err != nil || ctx.Err() != nil {
		return err
	}
	return f.runPartitions(ctx, l)
}

// pinnedConfig is the pinned runner's configuration for one consumer on
// stream.
func (f *Fanout) pinnedConfig(stream, consumer string) pinned.Config {
	return pinned.Config{
		Stream: stream, Consumer: consumer, Group: schema.PriorityGroupFanout,
		MaxMessages: 512, InOrder: true, Logger: f.cfg.Logger,
	}
}

// handle delivers one stored message or membership event and acks it. An
// error leaves it unacknowledged: the runner tries it again before any
// later one, so a membership change is never passed over.
func (f *Fanout) handle(ctx context.Context, msg jetstream.Msg) error {
	if f.cfg.Tracer != nil {
		return f.handleTraced(ctx, msg)
	}
	return f.handleMsg(ctx, msg)
}

// handleMsg is handle, traced or not.
func (f *Fanout) handleMsg(ctx context.Context, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		f.cfg.Logger.Warn("fanout got a message without metadata", "err", err)
		_ = msg.Term()
		return nil
	}
	f.prevs.saw(meta, msg.Headers().Get(pinned.HeaderPinID))
	subj := msg.Subject()
	conv := schema.ConvFromSubject(subj)
	if conv == "" || !protocol.ValidID(conv) {
		f.cfg.Logger.Warn("fanout skips a message on a bad subject", "subject", subj, "seq", meta.Sequence.Stream)
		if err := f.nc.PublishMsg(schema.DeadLetter("", meta.Sequence.Stream, subj, "subject holds no valid conversation id", msg.Data())); err != nil {
			return fmt.Errorf("%w: %w", ErrDeliver, err)
		}
		_ = msg.Ack()
		return nil
	}
	if schema.IsMember(subj) {
		err = f.member(ctx, conv, msg)
	} else {
		err = f.message(ctx, conv, meta, msg)
	}
	if err != nil {
		return fmt.Errorf("conversation %s, seq %d: %w", conv, meta.Sequence.Stream, err)
	}
	_ = msg.Ack()
	return nil
}

func (f *Fanout) message(ctx context.Context, conv string, meta *jetstream.MsgMetadata, msg jetstream.Msg) error {
	env, err := protocol.DecodeEnvelope(msg.Data())
	if err != nil {
		f.cfg.Logger.Warn("fanout skips a bad envelope", "conv", conv, "seq", meta.Sequence.Stream, "err", err)
		return f.nc.PublishMsg(schema.DeadLetter(conv, meta.Sequence.Stream, msg.Subject(), err.Error(), msg.Data()))
	}
	// Every valid envelope is an item of the conversation's sync order,
	// delivered or not: its prev is taken before anything can skip it.
	m := env.Message(conv, meta.Sequence.Stream, protocol.FormatTime(meta.Timestamp))
	if m.Prev, err = f.prevs.of(ctx, conv, m.Seq); err != nil {
		return err
	}
	if m.ExpiresAt != "" && m.Expired(f.cfg.Now()) {
		// Disappeared before it was delivered (a fan-out far behind):
		// nobody gets it; the next item's prev names it, which a client
		// lacking it syncs over (docs/protocol.md).
		return nil
	}
	mem, err := f.cache.get(ctx, conv)
	if errors.Is(err, conversation.ErrNotFound) {
		f.cfg.Logger.Warn("fanout skips a message to a conversation that does not exist", "conv", conv, "seq", meta.Sequence.Stream)
		return f.nc.PublishMsg(schema.DeadLetter(conv, meta.Sequence.Stream, msg.Subject(), "no such conversation", msg.Data()))
	}
	if err != nil {
		return err
	}
	if f.cfg.Inbox != nil {
		// Before the deliveries: a failure retries the item with nothing
		// delivered yet.
		if _, err := f.cfg.Inbox.Note(ctx, m, mem.doc.Members); err != nil {
			return err
		}
	}
	f.buf = protocol.AppendMessageFrame(f.buf[:0], m)
	origin := msg.Headers().Get(schema.HeaderOrigin)
	// The origin session is one of the sender's: only the sender's own
	// subject needs to carry it.
	originSubj := schema.User(env.Sender, schema.EventMessage)
	if f.cfg.Tracer != nil {
		err = f.deliverTraced(ctx, mem.msgSubj, f.buf, origin, originSubj)
	} else {
		err = f.deliverFrom(mem.msgSubj, f.buf, origin, originSubj)
	}
	if err != nil {
		return err
	}
	if f.cfg.Delay != nil {
		f.cfg.Delay.Observe(f.cfg.Now().Sub(meta.Timestamp).Seconds())
	}
	return nil
}

// deliver publishes the same frame to each subject. The bytes are copied
// into the connection's buffer, so the caller may reuse frame.
func (f *Fanout) deliver(subjects []string, frame []byte, origin string) error {
	return f.deliverFrom(subjects, frame, origin, "")
}

// stopCheckMask: deliverFrom looks whether its worker is stopping once
// every 1,024 publishes.
const stopCheckMask = 1<<10 - 1

// deliverFrom is deliver where only originSubj carries the origin header,
// or every subject when originSubj is "". A header is encoded per publish,
// so the members who cannot hold the origin session get none.
func (f *Fanout) deliverFrom(subjects []string, frame []byte, origin, originSubj string) error {
	var withOrigin *nats.Msg
	if origin != "" {
		withOrigin = &nats.Msg{Header: nats.Header{schema.HeaderOrigin: []string{origin}}, Data: frame}
	}
	for i, s := range subjects {
		if err := f.stopped(i, len(subjects)); err != nil {
			return err
		}
		var err error
		if withOrigin != nil && (originSubj == "" || s == originSubj) {
			// PublishMsg copies what it needs; the Msg is reused.
			withOrigin.Subject = s
			err = f.nc.PublishMsg(withOrigin)
		} else {
			err = f.nc.Publish(s, frame)
		}
		if err != nil {
			return fmt.Errorf("%w to %s: %w", ErrDeliver, s, err)
		}
	}
	return nil
}

// stopped returns ErrStopping, wrapped, once the worker is told to stop,
// looking every 1,024 publishes: i of n subjects are done.
func (f *Fanout) stopped(i, n int) error {
	if i&stopCheckMask != stopCheckMask {
		return nil
	}
	select {
	case <-f.stopping:
		return fmt.Errorf("%w after %d of %d subjects", ErrStopping, i, n)
	default:
		return nil
	}
}

func (f *Fanout) member(ctx context.Context, conv string, msg jetstream.Msg) error {
	var ev conversation.Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.Conv != conv {
		f.cfg.Logger.Warn("fanout skips a bad membership event", "conv", conv, "err", err)
		return nil
	}
	mem, err := f.cache.load(ctx, conv, ev.Rev)
	if errors.Is(err, conversation.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if f.cfg.Inbox != nil && (ev.Action == conversation.ActionCreated || ev.Action == conversation.ActionAdded || ev.Action == conversation.ActionAccepted) {
		// A conversation joined (or an invitation) enters the users'
		// heads, whatever its activity: see inbox.Head.
		if err := f.cfg.Inbox.Touch(ctx, conv, append(slices.Clone(ev.Users), ev.Invited...)); err != nil {
			return err
		}
	}
	switch ev.Action {
	case conversation.ActionCreated:
		if err := f.pushConversation(ctx, mem.doc, ev.Users, ev.Origin); err != nil {
			return err
		}
		return f.pushInvitations(ctx, mem.doc, ev.Invited)
	case conversation.ActionAdded:
		if err := f.pushConversation(ctx, mem.doc, ev.Users, ev.Origin); err != nil {
			return err
		}
		if err := f.pushInvitations(ctx, mem.doc, ev.Invited); err != nil {
			return err
		}
		if err := f.pushInvitedList(ctx, mem.doc, ev.Invited, ev.Users); err != nil {
			return err
		}
		return f.pushMemberEvents(mem.doc.Members, ev)
	case conversation.ActionAccepted:
		// Both sides see the conversation without its request state.
		return f.pushConversation(ctx, mem.doc, mem.doc.Members, ev.Origin)
	case conversation.ActionDeclined:
		// Only the decliner's devices hear of it, as a removal: the
		// requester is not told.
		ev.Action = conversation.ActionRemoved
		if err := f.pushMemberEvents(ev.Users, ev); err != nil {
			return err
		}
		// A declined invitation changes the group's invited list.
		return f.pushInvitedList(ctx, mem.doc, ev.Users, nil)
	case conversation.ActionWithdrawn:
		// The invitee hears of it as of a removal, the members get
		// the invited list without them (consent.go).
		ev.Action = conversation.ActionRemoved
		if err := f.pushMemberEvents(ev.Users, ev); err != nil {
			return err
		}
		return f.pushInvitedList(ctx, mem.doc, ev.Users, nil)
	case conversation.ActionRemoved:
		// The removed users hear of it too, then nothing more.
		to := append(append([]string(nil), mem.doc.Members...), ev.Users...)
		if err := f.pushMemberEvents(to, ev); err != nil {
			return err
		}
		if len(ev.Items) > 0 {
			// The change said something (a ban, a new owner after the
			// owner left): the members get the group as it is now.
			return f.pushConversation(ctx, mem.doc, mem.doc.Members, "")
		}
		return nil
	case conversation.ActionUpdated:
		// Settings or roles changed: every member's connections get
		// the group as it is now, the acting one's too (set_role and
		// the like answer only ok).
		return f.pushConversation(ctx, mem.doc, mem.doc.Members, "")
	}
	return nil
}

// lastOf fills c's last_seq and preview. The inbox's summary is the
// conversation as of this point of the stream, as the fan-out delivers it:
// the message pushes that follow are each newer, so a client applies
// them on top (docs/protocol.md "Inbox"). Without one, the stream's last.
func (f *Fanout) lastOf(ctx context.Context, c *protocol.Conversation) error {
	if f.cfg.Inbox != nil {
		top, last, ok, err := f.cfg.Inbox.Summary(ctx, c.Conv)
		if err != nil {
			return err
		}
		if ok {
			c.LastSeq, c.Last = top, last
			return nil
		}
	}
	var err error
	c.LastSeq, err = f.last.Last(ctx, c.Conv)
	return err
}

// pushConversation tells users they are members of d, with its current
// state, except the connection whose request caused it (it has the reply).
func (f *Fanout) pushConversation(ctx context.Context, d *conversation.Doc, users []string, origin string) error {
	c := d.Protocol(f.cfg.MembersInline)
	if err := f.lastOf(ctx, c); err != nil {
		return err
	}
	if d.HasStates() || d.Kind == protocol.ConversationGroup {
		// Rendered per consent state and role.
		return f.pushConversationStates(d, c, users, origin)
	}
	frame, _ := json.Marshal(protocol.ConversationFrame{Type: protocol.TypeConversation, Push: true, Conversation: c})
	subjects := make([]string, len(users))
	for i, u := range users {
		subjects[i] = schema.User(u, schema.EventConversation)
	}
	return f.deliver(subjects, frame, origin)
}

func (f *Fanout) pushMemberEvents(to []string, ev conversation.Event) error {
	subjects := make([]string, len(to))
	for i, u := range to {
		subjects[i] = schema.User(u, schema.EventMember)
	}
	for n, u := range ev.Users {
		// deliver looks for a stop every 1,024 publishes of one frame:
		// with fewer subjects per frame, look between frames too, or a
		// batch of many small frames would run to its end.
		if len(subjects) <= stopCheckMask && n&stopFrameMask == stopFrameMask {
			select {
			case <-f.stopping:
				return fmt.Errorf("%w after %d of %d member frames", ErrStopping, n, len(ev.Users))
			default:
			}
		}
		frame, _ := json.Marshal(protocol.MemberEvent{Type: protocol.TypeMember, Conv: ev.Conv, User: u, Action: ev.Action, By: ev.By})
		if err := f.deliver(subjects, frame, ""); err != nil {
			return err
		}
	}
	return nil
}

// stopFrameMask: pushMemberEvents looks for a stop every 16 frames when
// deliver would not (frames of fewer than 1,024 subjects).
const stopFrameMask = 1<<4 - 1

// readEvent is the push members get for a moved read marker.
type readEvent struct {
	Type string `json:"type"`
	Conv string `json:"conv"`
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
}

// onRead tells every member, the reader's other devices included, that a
// read marker moved.
func (f *Fanout) onRead(msg *nats.Msg) {
	conv := schema.ConvFromSubject(msg.Subject)
	var n schema.ReadNotice
	if conv == "" || json.Unmarshal(msg.Data, &n) != nil || !protocol.ValidID(n.User) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mem, err := f.cache.get(ctx, conv)
	if err != nil || !mem.doc.IsMember(n.User) {
		return
	}
	frame, _ := json.Marshal(readEvent{Type: protocol.TypeRead, Conv: conv, User: n.User, Seq: n.Seq})
	for _, u := range noticeAudience(mem.doc.Members, n.User, n.Except) {
		_ = f.nc.Publish(schema.User(u, schema.EventRead), frame)
	}
	// The reader's own devices follow their marker in any conversation.
	_ = f.nc.Publish(schema.User(n.User, schema.EventRead), frame)
}

// noticeAudience returns the members who get a typing or read notice of
// from: none in a conversation of more than protocol.MaxNoticeMembers
// members (each notice would cost a push and a membership check per
// member), and never from itself or the users from blocked.
func noticeAudience(members []string, from string, blocked []string) []string {
	if len(members) > protocol.MaxNoticeMembers {
		return nil
	}
	out := make([]string, 0, len(members))
	for _, u := range members {
		if u != from && !slices.Contains(blocked, u) {
			out = append(out, u)
		}
	}
	return out
}

func (f *Fanout) onTyping(msg *nats.Msg) {
	conv := schema.ConvFromSubject(msg.Subject)
	var n schema.TypingNotice
	if conv == "" || json.Unmarshal(msg.Data, &n) != nil || !protocol.ValidID(n.User) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mem, err := f.cache.get(ctx, conv)
	if err != nil || !mem.doc.IsMember(n.User) {
		return
	}
	frame, _ := json.Marshal(protocol.Typing{Type: protocol.TypeTyping, Conv: conv, User: n.User})
	for _, u := range noticeAudience(mem.doc.Members, n.User, n.Except) {
		_ = f.nc.Publish(schema.User(u, schema.EventTyping), frame)
	}
}
