package pushnotify

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/pinned"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/presence"
	"github.com/natter-chat/natter/protocol"
)

// Conversations is what the dispatcher reads of the conversation store
// (conversation.Store implements it).
type Conversations interface {
	Get(ctx context.Context, conv string) (*conversation.Doc, error)
}

// Blocks says whom a user blocked (conversation.Store implements it).
type Blocks interface {
	HasBlocked(ctx context.Context, uid, other string) (bool, error)
}

// DispatcherConfig tunes a Dispatcher. The zero value is filled with
// defaults.
type DispatcherConfig struct {
	// Window is the coalescing window per user and conversation
	// (default 2 s).
	Window time.Duration
	// MaxOpen bounds the open windows (default 10,000).
	MaxOpen int
	// Private sends notifications without message text.
	Private bool
	// Workers send batches concurrently (default 8).
	Workers int
	// Queue bounds the batches waiting for a worker (default 1,024); a
	// full queue slows the consumer down.
	Queue int
	// Policy is the retry policy of each send.
	Policy Policy
	// SendTimeout bounds the sends of one batch, retries included
	// (default 2 min); what is still failing then is dead-lettered.
	SendTimeout time.Duration
	// DrainTimeout bounds how long Run keeps sending after its context
	// ended (default 15 s); what is cut short is redelivered later.
	DrainTimeout time.Duration
	// MemberCacheSize and MemberCacheTTL bound the member lists kept
	// (default 10,000 conversations, 1 minute).
	MemberCacheSize int
	MemberCacheTTL  time.Duration
	// Clock defaults to SystemClock.
	Clock Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c DispatcherConfig) withDefaults() DispatcherConfig {
	if c.Window <= 0 {
		c.Window = 2 * time.Second
	}
	if c.MaxOpen <= 0 {
		c.MaxOpen = 10_000
	}
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.Queue <= 0 {
		c.Queue = 1024
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 2 * time.Minute
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 15 * time.Second
	}
	if c.MemberCacheSize <= 0 {
		c.MemberCacheSize = 10_000
	}
	if c.MemberCacheTTL <= 0 {
		c.MemberCacheTTL = time.Minute
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// DispatcherDeps are the parts a Dispatcher works with; all are required.
type DispatcherDeps struct {
	// JS reads the pushnotify consumer and publishes dead letters.
	JS jetstream.JetStream
	// Sender delivers notifications, usually a Router.
	Sender Sender
	// Devices holds devices and mutes (the PUSH bucket).
	Devices *Store
	// Presence is the PRESENCE bucket.
	Presence jetstream.KeyValue
	// Sent is the dedup bucket (PUSH_SENT).
	Sent *KVDedup
	// Convs gives member lists.
	Convs Conversations
	// Blocks spares users the messages of those they blocked.
	Blocks Blocks
}

// Dispatcher reads the CHAT stream with the durable consumer pushnotify
// and notifies members who are offline and have not muted the
// conversation, coalescing per user and conversation over a window.
//
// A CHAT message is acknowledged only once every batch it went into was
// sent, dropped for an invalid token, or dead-lettered: at least once.
// The dedup bucket keeps a redelivered message from notifying a device
// twice. Memory is bounded by the consumer's MaxAckPending, MaxOpen,
// Queue and the member cache.
type Dispatcher struct {
	cfg  DispatcherConfig
	deps DispatcherDeps
	co   *Coalescer
	jobs chan job

	// members are the conversations' documents; membership events drop
	// an entry, the TTL bounds staleness.
	members *conversation.MemberCache[*conversation.Doc]
	// sendCtx is cancelled DrainTimeout after Run's context ended.
	sendCtx context.Context

	mu       sync.Mutex
	inflight map[streamSeq]*pending    // by message stream and seq
	waiting  map[windowKey][]pendingAt // messages in open windows
	counters map[Counter]uint64
}

// pending is a CHAT message held until all its batches are done.
// streamSeq names a stored message: with partition streams a seq alone
// is not unique.
type streamSeq struct {
	stream string
	seq    uint64
}

type pending struct {
	msg    jetstream.Msg
	key    streamSeq
	seq    uint64
	refs   int
	failed bool
}

type pendingAt struct {
	seq uint64
	p   *pending
}

type job struct {
	batch Batch
	refs  []*pending
}

// NewDispatcher returns a Dispatcher; Run starts it, once.
func NewDispatcher(cfg DispatcherConfig, deps DispatcherDeps) (*Dispatcher, error) {
	if deps.JS == nil || deps.Sender == nil || deps.Devices == nil || deps.Presence == nil || deps.Sent == nil || deps.Convs == nil || deps.Blocks == nil {
		return nil, errors.New("pushnotify: every dispatcher dependency is required")
	}
	cfg = cfg.withDefaults()
	d := &Dispatcher{
		cfg: cfg, deps: deps,
		jobs: make(chan job, cfg.Queue),
		members: conversation.NewDocCache(conversation.CacheConfig{
			Size: cfg.MemberCacheSize, TTL: cfg.MemberCacheTTL, Now: cfg.Clock.Now}, deps.Convs),
		inflight: make(map[streamSeq]*pending),
		waiting:  make(map[windowKey][]pendingAt),
		counters: make(map[Counter]uint64),
	}
	co, err := NewCoalescer(CoalescerConfig{Window: cfg.Window, MaxOpen: cfg.MaxOpen, Flush: d.flush, Clock: cfg.Clock, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	d.co = co
	return d, nil
}

// Run dispatches until ctx ends. Then it stops consuming, flushes every
// open window, sends what is queued (for at most DrainTimeout) and
// returns once no goroutine of it runs; messages whose batches were cut
// short are left unacknowledged and come back to the next dispatcher.
func (d *Dispatcher) Run(ctx context.Context) error {
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	d.sendCtx = sendCtx
	var workers sync.WaitGroup
	for range d.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range d.jobs {
				ok := d.send(j.batch)
				for _, p := range j.refs {
					d.release(p, ok)
				}
			}
		}()
	}
	l, err := schema.ReadLayout(ctx, d.deps.JS)
	if err == nil {
		err = pinned.RunStreams(ctx, d.deps.JS, pinned.Config{
			Consumer: schema.ConsumerPush, Group: schema.PriorityGroupPush,
			MaxMessages: 256, Logger: d.cfg.Logger,
		}, l.ChatStreams(), d.handle)
	}
	stop := time.AfterFunc(d.cfg.DrainTimeout, cancelSend)
	defer stop.Stop()
	d.co.Stop() // flushes every open window into the queue
	close(d.jobs)
	workers.Wait()
	return err
}

// handle takes one CHAT message or membership event. It never asks the
// runner to retry: a message that fails is nak'd once its batches are
// done, since notifications need no strict order.
func (d *Dispatcher) handle(ctx context.Context, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return nil
	}
	subj := msg.Subject()
	conv := schema.ConvFromSubject(subj)
	if conv == "" || !protocol.ValidID(conv) {
		_ = msg.Ack()
		return nil
	}
	member := schema.IsMember(subj)
	if member {
		d.members.Drop(conv) // the next message reloads the members, in order
		if !opensRequest(msg.Data()) {
			_ = msg.Ack()
			return nil
		}
	}
	seq := meta.Sequence.Stream
	d.mu.Lock()
	key := streamSeq{meta.Stream, seq}
	if _, held := d.inflight[key]; held {
		d.mu.Unlock() // redelivered while its batches are still under way
		return nil
	}
	p := &pending{msg: msg, key: key, seq: seq, refs: 1}
	d.inflight[key] = p
	d.mu.Unlock()
	var ok bool
	if member {
		ok = d.request(ctx, conv, seq, msg.Data(), p)
	} else {
		ok = d.message(ctx, conv, seq, msg.Data(), p)
	}
	d.release(p, ok)
	return nil
}

// message adds seq to the window of every recipient and reports whether
// it could.
func (d *Dispatcher) message(ctx context.Context, conv string, seq uint64, data []byte, p *pending) bool {
	env, err := protocol.DecodeEnvelope(data)
	if err != nil || env.Kind != protocol.KindMessage {
		return true // edits, deletions, reactions and garbage notify nobody
	}
	if env.ExpiresAt != "" && env.Expired(time.Now()) {
		return true // disappeared already: no push shows it (protocol/ttl.go)
	}
	doc, err := d.members.Get(ctx, conv)
	if errors.Is(err, conversation.ErrNotFound) {
		return true
	}
	if err != nil {
		d.cfg.Logger.Warn("pushnotify cannot read the members, will retry", "conv", conv, "seq", seq, "err", err)
		return false
	}
	text := textOf(env.Body)
	for _, u := range doc.Members {
		if u == env.Sender || doc.IsPending(u) {
			// A message request notifies its recipient once, when it
			// is opened (request), not per message.
			continue
		}
		skip, err := d.skip(ctx, u, conv, env.Sender, protocol.Mentions(env.Mentions, u))
		if err != nil {
			d.cfg.Logger.Warn("pushnotify cannot check a recipient, will retry", "user", u, "conv", conv, "seq", seq, "err", err)
			return false
		}
		if skip {
			continue
		}
		if !d.queue(p, Message{User: u, Conv: conv, ConvTitle: doc.Title, Sender: env.Sender, Text: text, Seq: seq}) {
			return false
		}
	}
	return true
}

// queue hands m to the coalescer as one of p's notifications; false when
// it could not (p is released then, and the message comes back).
func (d *Dispatcher) queue(p *pending, m Message) bool {
	k := windowKey{m.User, m.Conv}
	d.mu.Lock()
	p.refs++
	d.waiting[k] = append(d.waiting[k], pendingAt{m.Seq, p})
	d.mu.Unlock()
	if err := d.co.Add(m); err != nil {
		d.unwait(k, m.Seq)
		d.release(p, false)
		return false
	}
	return true
}

// skip reports whether uid is online, has muted conv (at level mentions:
// and is not mentioned) or blocked sender.
func (d *Dispatcher) skip(ctx context.Context, uid, conv, sender string, mentioned bool) (bool, error) {
	st, err := presence.Get(ctx, d.deps.Presence, uid)
	if err != nil {
		return false, err
	}
	if st.Online {
		return true, nil
	}
	level, err := d.deps.Devices.MuteLevel(ctx, uid, conv)
	if err != nil {
		return false, err
	}
	if level == protocol.MuteAll || level == protocol.MuteMentions && !mentioned {
		return true, nil
	}
	return d.deps.Blocks.HasBlocked(ctx, uid, sender)
}

func (d *Dispatcher) unwait(k windowKey, seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.waiting[k]
	for i := len(w) - 1; i >= 0; i-- {
		if w[i].seq == seq {
			w = append(w[:i], w[i+1:]...)
			break
		}
	}
	if len(w) == 0 {
		delete(d.waiting, k)
	} else {
		d.waiting[k] = w
	}
}

// flush is the Coalescer's Flush: it takes the messages of b out of the
// waiting list and queues b for a worker.
func (d *Dispatcher) flush(b Batch) {
	k := windowKey{b.User, b.Conv}
	var refs []*pending
	d.mu.Lock()
	keep := d.waiting[k][:0]
	for _, w := range d.waiting[k] {
		if w.seq >= b.FirstSeq && w.seq <= b.LastSeq {
			refs = append(refs, w.p)
		} else {
			keep = append(keep, w)
		}
	}
	if len(keep) == 0 {
		delete(d.waiting, k)
	} else {
		d.waiting[k] = keep
	}
	d.mu.Unlock()
	d.jobs <- job{batch: b, refs: refs}
}

// release drops one reference to p; the last one acknowledges the
// message, or asks for it again when a batch it went into failed.
func (d *Dispatcher) release(p *pending, ok bool) {
	d.mu.Lock()
	if !ok {
		p.failed = true
	}
	p.refs--
	done := p.refs == 0
	if done {
		delete(d.inflight, p.key)
	}
	d.mu.Unlock()
	if !done {
		return
	}
	if p.failed {
		_ = p.msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = p.msg.Ack()
}

// textOf returns body.text when it is a string.
func textOf(body json.RawMessage) string {
	var b struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(body, &b)
	return b.Text
}
