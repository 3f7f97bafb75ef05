package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/pinned"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/services"
)

// Services says which service a sender belongs to; *services.Index is
// one, kept current by a watch of the registry.
type Services interface {
	ServiceOf(sender string) (name string, ok bool)
	Services() []services.Service
}

var _ Services = (*services.Index)(nil)

// Config tunes a Writer. The zero value is filled with defaults.
type Config struct {
	// CacheSize bounds how many conversations' member lists are kept
	// (default 10,000); CacheTTL how long one is trusted without a
	// membership event (default 1 minute).
	CacheSize int
	CacheTTL  time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// Now is the clock.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Writer turns CHAT into service events.
type Writer struct {
	cfg     Config
	js      jetstream.JetStream
	svcs    Services
	members *conversation.MemberCache[[]string]
}

// New returns a Writer reading conversation documents from convs and the
// services from svcs; Run starts it.
func New(cfg Config, js jetstream.JetStream, convs conversation.Source, svcs Services) *Writer {
	cfg = cfg.withDefaults()
	return &Writer{
		cfg: cfg, js: js, svcs: svcs,
		members: conversation.NewMemberCache(conversation.CacheConfig{Size: cfg.CacheSize, TTL: cfg.CacheTTL, Now: cfg.Now},
			convs, func(d *conversation.Doc) []string { return d.Members }),
	}
}

// Run writes events until ctx ends. Every process of the events role may
// run one: the pinned consumer lets one at a time write, in stream order.
//
// With partition streams (schema.Layout) it consumes each stream's
// consumer, one worker per stream.
func (w *Writer) Run(ctx context.Context) error {
	l, err := schema.ReadLayout(ctx, w.js)
	if err != nil {
		return err
	}
	return pinned.RunStreams(ctx, w.js, pinned.Config{
		Consumer: schema.ConsumerServiceEvents, Group: schema.PriorityGroupServiceEvents,
		MaxMessages: 256, InOrder: true, Logger: w.cfg.Logger,
	}, l.ChatStreams(), w.handle)
}

// handle writes the events of one stored message or membership event and
// acks it. An error leaves it for the runner to try again, before any
// later one; an event written twice is dropped by SVC_EVENTS' duplicate
// window, since its Nats-Msg-Id is its id.
func (w *Writer) handle(ctx context.Context, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return nil
	}
	subj := msg.Subject()
	conv := schema.ConvFromSubject(subj)
	switch {
	case conv == "" || !protocol.ValidID(conv):
		// The fan-out dead-letters it; there is nothing to tell a service.
	case len(w.svcs.Services()) == 0:
		if schema.IsMember(subj) {
			w.members.Drop(conv) // read again once a service exists
		}
	case schema.IsMember(subj):
		err = w.member(ctx, conv, meta, msg.Data())
	default:
		err = w.message(ctx, conv, meta, msg.Data())
	}
	if err != nil {
		return fmt.Errorf("events: conversation %s, seq %d: %w", conv, meta.Sequence.Stream, err)
	}
	_ = msg.Ack()
	return nil
}

func (w *Writer) message(ctx context.Context, conv string, meta *jetstream.MsgMetadata, data []byte) error {
	env, err := protocol.DecodeEnvelope(data)
	if err != nil {
		return nil // the fan-out dead-letters it
	}
	members, err := w.members.Get(ctx, conv)
	if errors.Is(err, conversation.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	to := servicesOf(w.svcs, members)
	ev := protocol.ServiceEvent{
		V: protocol.ServiceEventVersion, Type: protocol.ServiceEventType(env.Kind), Conv: conv, Seq: meta.Sequence.Stream,
		TS: protocol.FormatTime(meta.Timestamp), Sender: env.Sender, ClientID: env.ClientID, Ref: env.Ref, Body: env.Body,
	}
	own, _ := w.svcs.ServiceOf(env.Sender)
	for _, s := range to.names() {
		if s == own {
			continue // a service is not told what it posted itself
		}
		if err := w.publish(ctx, meta.Stream, s, to[s], ev); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) member(ctx context.Context, conv string, meta *jetstream.MsgMetadata, data []byte) error {
	var ch conversation.Event
	if err := json.Unmarshal(data, &ch); err != nil || ch.Conv != conv {
		w.cfg.Logger.Warn("Service events skip a bad membership event.", "conv", conv, "seq", meta.Sequence.Stream, "err", err)
		return nil
	}
	members, err := w.members.Refresh(ctx, conv)
	if errors.Is(err, conversation.ErrNotFound) {
		w.members.Drop(conv)
		members = nil
	} else if err != nil {
		return err
	}
	ev := protocol.ServiceEvent{
		V: protocol.ServiceEventVersion, Conv: conv, Seq: meta.Sequence.Stream,
		TS: protocol.FormatTime(meta.Timestamp), Users: ch.Users, By: ch.By,
	}
	to := servicesOf(w.svcs, members)
	switch ch.Action {
	case conversation.ActionCreated, conversation.ActionAdded:
		ev.Type = protocol.ServiceEventMemberAdded
	case conversation.ActionRemoved, conversation.ActionDeclined:
		ev.Type = protocol.ServiceEventMemberRemoved
		// A removed service hears of its own removal, and nothing after.
		for s := range servicesOf(w.svcs, ch.Users) {
			if _, ok := to[s]; !ok {
				to[s] = nil
			}
		}
	default:
		return nil // accepted, withdrawn: no change of who reads what
	}
	if len(ch.Users) == 0 {
		return nil
	}
	for _, s := range to.names() {
		if err := w.publish(ctx, meta.Stream, s, to[s], ev); err != nil {
			return err
		}
	}
	return nil
}

// interested maps each service with a sender among some users to those
// senders.
type interested map[string][]string

// servicesOf returns the services any of users is a sender of, with
// those senders.
func servicesOf(svcs Services, users []string) interested {
	out := interested{}
	for _, u := range users {
		if s, ok := svcs.ServiceOf(u); ok {
			out[s] = append(out[s], u)
		}
	}
	return out
}

// names returns the services, sorted: events are written in one order.
func (in interested) names() []string { return slices.Sorted(maps.Keys(in)) }

// EventID is the id of the event of CHAT seq addressed to service:
// "<seq>.<service>". It is also its Nats-Msg-Id.
func EventID(seq uint64, service string) string {
	return strconv.FormatUint(seq, 10) + "." + service
}

// EventIDIn is the id of the event of seq in message stream stream: EventID
// for CHAT; for partition stream CHAT_<p> (schema.Layout), whose seqs
// other partitions repeat, "<p>-<seq>.<service>".
func EventIDIn(stream string, seq uint64, service string) string {
	if p, ok := strings.CutPrefix(stream, schema.StreamChat+"_"); ok {
		return p + "-" + EventID(seq, service)
	}
	return EventID(seq, service)
}

func (w *Writer) publish(ctx context.Context, stream, service string, as []string, ev protocol.ServiceEvent) error {
	ev.Service = service
	ev.As = slices.Sorted(slices.Values(as))
	ev.ID = EventIDIn(stream, ev.Seq, service)
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	m := &nats.Msg{Subject: schema.ServiceEvent(service, ev.Conv), Data: data, Header: nats.Header{}}
	if _, err := w.js.PublishMsg(ctx, m, jetstream.WithMsgID(ev.ID)); err != nil {
		return fmt.Errorf("publish event %s: %w", ev.ID, err)
	}
	return nil
}
