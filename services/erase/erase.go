// Package erase erases a user (GDPR, issue 16): it removes them from
// every conversation, deletes their devices, presence, markers, inbox
// records, block list, attachments and quota, and replaces every message
// they sent with a tombstone in the history store, the search index (by
// the deletions it publishes) and the CHAT stream (JetStream message
// delete by seq, which only the eraser role may do). Others' messages
// stay; quotes of an erased message lose their snippet in the store.
//
// An erasure is recorded in the CONVERSATIONS bucket under x.<uid>
// (conversation.ErasedKey) before anything else: from then on the user
// can no longer log in, and the record keeps the progress, so a run that
// stops half-way (a crash, a timeout) finishes on the next run. It runs in
// the process that holds the history store (natter serve, natter history),
// as the micro service chat.api.erase (api.go).
package erase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Attachments deletes the attachments of erased messages: the
// attachments service (attachments.Service) of this process.
type Attachments interface {
	// Delete deletes the attachments ids of a message of conv.
	Delete(ctx context.Context, conv string, ids []string) error
	// DeleteOwned deletes every attachment uid still owns (uploads no
	// message references, export archives) and counts them.
	DeleteOwned(ctx context.Context, uid string) (int, error)
}

// Config is what an Eraser works with.
type Config struct {
	// JS is the eraser role's JetStream (schema.RoleEraser).
	JS jetstream.JetStream
	// Convs is the conversation store on that connection.
	Convs *conversation.Store
	// Pages reads a conversation's messages (the history Reader).
	Pages history.Pages
	// Store is the history store, which erases rows.
	Store history.Eraser
	// Attachments, optional: without it attachments are not deleted and
	// the report says so (Report.AttachmentsSkipped).
	Attachments Attachments
	// Exports, optional, stores export archives and signs attachment
	// URLs (attachments.Service); without it the export API is refused.
	Exports ExportStore
	// FloorWait bounds the wait for the history writer to store the
	// deletions published; default 2 minutes.
	FloorWait time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// Now; time.Now by default.
	Now func() time.Time
	// StopAfter, when > 0, stops a run after that many steps with
	// ErrStopped (tests: a crash mid-way).
	StopAfter int
}

// ErrStopped is returned by a run Config.StopAfter stopped.
var ErrStopped = errors.New("erase: stopped after the configured steps")

// ErrBadUser: the user id is not valid.
var ErrBadUser = errors.New("erase: bad user id")

// Report is what an erasure did, over all its runs, and the progress
// record kept under x.<uid>.
type Report struct {
	User     string `json:"user"`
	State    string `json:"state"` // "erasing" or "done"
	Started  string `json:"started"`
	Finished string `json:"finished,omitempty"`
	// Runs counts the runs that worked on it.
	Runs int `json:"runs"`
	// Convs are the conversations the user was in when it started; Next
	// is the index of the first not yet finished.
	Convs []string `json:"convs"`
	Next  int      `json:"next"`
	// UserDone says the user-level keys are deleted.
	UserDone bool `json:"user_done"`
	Counts   `json:"counts"`
}

// Counts say what was erased.
type Counts struct {
	// Conversations the user was removed from (groups) or kept in
	// (direct ones: they have exactly two members).
	Left       int `json:"left"`
	DirectKept int `json:"direct_kept"`
	// Messages their rows (messages, edits, reactions) made tombstones in
	// the store; Deletions the deletions published for their messages
	// (which the search index and clients apply); StreamDeleted the
	// messages deleted from CHAT.
	Messages      int `json:"messages"`
	Deletions     int `json:"deletions"`
	StreamDeleted int `json:"stream_deleted"`
	// StreamDenied: CHAT denies deletes (made before erasure existed);
	// those copies leave the stream with the retention trimmer.
	StreamDenied int `json:"stream_denied,omitempty"`
	// Quotes of their messages in others' rows whose snippet was removed
	// in the store. Those rows' copies in CHAT are deleted too (counted in
	// StreamDeleted) once every consumer is past them; QuotesLeft were
	// not, and leave CHAT with the retention trimmer.
	Quotes     int `json:"quotes"`
	QuotesLeft int `json:"quotes_left,omitempty"`
	// Attachments deleted; AttachmentsSkipped: this process has no
	// attachments store, so none was.
	Attachments        int  `json:"attachments"`
	AttachmentsSkipped bool `json:"attachments_skipped,omitempty"`
	// Keys deleted: markers, presence, inbox, block list, settings,
	// quota, user index.
	Keys int `json:"keys"`
	// PushKeys: device and mute keys purged. The eraser may not read
	// device tokens, so it purges the keys whether or not they exist.
	PushKeys int `json:"push_keys"`
}

// States of a Report.
const (
	StateErasing = "erasing"
	StateDone    = "done"
)

// pageSize is how many rows one page of the scan reads.
const pageSize = 500

// Eraser erases users.
type Eraser struct {
	cfg   Config
	convs jetstream.KeyValue
	push  jetstream.KeyValue
	pres  jetstream.KeyValue
	att   jetstream.KeyValue
	// layout is the message streams' (schema.Layout); chats and hists
	// are each stream and its history consumer, by Layout.StreamIndex.
	layout schema.Layout
	chats  []jetstream.Stream
	hists  []jetstream.Consumer
}

// New returns an Eraser.
func New(ctx context.Context, cfg Config) (*Eraser, error) {
	if cfg.FloorWait <= 0 {
		cfg.FloorWait = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Eraser{cfg: cfg}
	var err error
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{{&e.convs, schema.BucketConversations}, {&e.push, schema.BucketPush}, {&e.pres, schema.BucketPresence}, {&e.att, schema.BucketAttachments}} {
		if *b.kv, err = cfg.JS.KeyValue(ctx, b.name); err != nil {
			return nil, fmt.Errorf("erase: bucket %s: %w", b.name, err)
		}
	}
	if e.layout, err = schema.ReadLayout(ctx, cfg.JS); err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	for _, name := range e.layout.ChatStreams() {
		st, err := cfg.JS.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("erase: stream %s: %w", name, err)
		}
		hist, err := cfg.JS.Consumer(ctx, name, schema.ConsumerHistory)
		if err != nil {
			return nil, fmt.Errorf("erase: history consumer on %s: %w", name, err)
		}
		e.chats, e.hists = append(e.chats, st), append(e.hists, hist)
	}
	return e, nil
}

// Record returns uid's erasure record, nil when none. It is read from
// the bucket's leader: a replica behind the last save would make a run
// start from an older step and do and count its work again.
func (e *Eraser) Record(ctx context.Context, uid string) (*Report, uint64, error) {
	val, rev, err := e.cfg.Convs.LeaderValue(ctx, conversation.ErasedKey(uid))
	if err != nil {
		return nil, 0, fmt.Errorf("erase: read record of %s: %w", uid, err)
	}
	if rev == 0 {
		return nil, 0, nil
	}
	var r Report
	if err := json.Unmarshal(val, &r); err != nil {
		return nil, 0, fmt.Errorf("erase: decode record of %s: %w", uid, err)
	}
	return &r, rev, nil
}

// Begin records the erasure of uid, unless recorded already, and closes
// the user's connections: from here on they cannot log in. It returns
// the record.
func (e *Eraser) Begin(ctx context.Context, uid string) (*Report, error) {
	if !protocol.ValidID(uid) {
		return nil, fmt.Errorf("%w: %q", ErrBadUser, uid)
	}
	r, _, err := e.Record(ctx, uid)
	if err != nil {
		return nil, err
	}
	if r == nil {
		convs, err := e.cfg.Convs.UserConversations(ctx, uid)
		if err != nil {
			return nil, fmt.Errorf("erase: conversations of %s: %w", uid, err)
		}
		r = &Report{User: uid, State: StateErasing, Started: protocol.FormatTime(e.cfg.Now()), Convs: convs}
		if r.Convs == nil {
			r.Convs = []string{}
		}
		b, _ := json.Marshal(r)
		if _, err := e.convs.Create(ctx, conversation.ErasedKey(uid), b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("erase: record %s: %w", uid, err)
		} else if err != nil {
			if r, _, err = e.Record(ctx, uid); err != nil {
				return nil, err
			}
		}
	}
	if err := e.cfg.JS.Conn().Publish(schema.UserErased(uid), nil); err != nil {
		return nil, fmt.Errorf("erase: close connections of %s: %w", uid, err)
	}
	return r, nil
}

// Run erases uid, or finishes an erasure a run before did not, and
// returns the report. A finished erasure is reported as it is.
func (e *Eraser) Run(ctx context.Context, uid string) (*Report, error) {
	r, err := e.Begin(ctx, uid)
	if err != nil || r.State == StateDone {
		return r, err
	}
	r.Runs++
	steps := 0
	step := func() error {
		if err := e.save(ctx, r); err != nil {
			return err
		}
		steps++
		if e.cfg.StopAfter > 0 && steps >= e.cfg.StopAfter {
			return ErrStopped
		}
		return nil
	}
	for r.Next < len(r.Convs) {
		if err := e.conv(ctx, r, r.Convs[r.Next]); err != nil {
			_ = e.save(ctx, r)
			return r, err
		}
		r.Next++
		if err := step(); err != nil {
			return r, err
		}
	}
	if !r.UserDone {
		if err := e.userKeys(ctx, r); err != nil {
			_ = e.save(ctx, r)
			return r, err
		}
		r.UserDone = true
		if err := step(); err != nil {
			return r, err
		}
	}
	r.State, r.Finished = StateDone, protocol.FormatTime(e.cfg.Now())
	if err := e.save(ctx, r); err != nil {
		return r, err
	}
	// Once more: a connection that got in while the record was written.
	_ = e.cfg.JS.Conn().Publish(schema.UserErased(uid), nil)
	e.cfg.Logger.Info("user erased", "user", uid, "runs", r.Runs, "convs", len(r.Convs), "messages", r.Messages,
		"stream_deleted", r.StreamDeleted, "attachments", r.Attachments, "keys", r.Keys)
	return r, nil
}

func (e *Eraser) save(ctx context.Context, r *Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := e.convs.Put(ctx, conversation.ErasedKey(r.User), b); err != nil {
		return fmt.Errorf("erase: save progress of %s: %w", r.User, err)
	}
	return nil
}

// conv erases uid from one conversation. Each of its steps is idempotent,
// so a conversation a run stopped in is done again from the start:
//  1. scan every row: the user's rows, and others' quoting the user;
//     delete the attachments of the user's messages and publish a
//     deletion for each of them not deleted yet (the search index and
//     clients apply it; the store makes the message a tombstone);
//  2. wait until the history writer stored all of it;
//  3. erase the user's rows and the quotes in the store;
//  4. delete the user's rows from CHAT (deletions stay: they carry no
//     body, and the indexer may not have read them yet);
//  5. remove the user (the normal membership change: others get the
//     event, ownership passes on) and their markers.
func (e *Eraser) conv(ctx context.Context, r *Report, conv string) error {
	uid := r.User
	var own, unquote []uint64
	var deletions []uint64 // seqs of own plain messages, for the store and stream
	var top uint64
	var after uint64
	for {
		page, more, err := e.cfg.Pages.After(ctx, conv, after, pageSize)
		if err != nil {
			return fmt.Errorf("erase: read %s: %w", conv, err)
		}
		for _, m := range page {
			top = max(top, m.Seq)
			if m.Sender != uid {
				if m.Quote != nil && m.Quote.Sender == uid && m.Quote.Snippet != "" {
					unquote = append(unquote, m.Seq)
				}
				continue
			}
			if m.Kind == protocol.KindEvent {
				continue
			}
			if m.Kind != protocol.KindDelete {
				own = append(own, m.Seq)
			}
			if m.Kind != protocol.KindMessage || m.Deleted {
				continue
			}
			if err := e.attachments(ctx, r, conv, m); err != nil {
				return err
			}
			ack, err := e.publishDelete(ctx, conv, uid, m.Seq)
			if err != nil {
				return err
			}
			top = max(top, ack)
			deletions = append(deletions, m.Seq)
		}
		if !more || len(page) == 0 {
			break
		}
		after = page[len(page)-1].Seq
	}
	r.Deletions += len(deletions)
	if err := e.waitFloor(ctx, conv, top); err != nil {
		return err
	}
	if err := e.cfg.Store.Erase(ctx, conv, own, unquote); err != nil {
		return fmt.Errorf("erase: store rows of %s in %s: %w", uid, conv, err)
	}
	r.Messages += len(own)
	r.Quotes += len(unquote)
	chat := e.chats[e.layout.StreamIndex(conv)]
	for _, seq := range own {
		switch err := chat.SecureDeleteMsg(ctx, seq); {
		case err == nil:
			r.StreamDeleted++
		case isNotFound(err):
			// Trimmed already, or deleted by a run before.
		case isDenied(err):
			r.StreamDenied++
		default:
			return fmt.Errorf("erase: delete %s seq %d from %s: %w", conv, seq, e.layout.StreamOf(conv), err)
		}
	}
	if err := e.dropQuotes(ctx, r, conv, unquote); err != nil {
		return err
	}
	return e.leave(ctx, r, conv)
}

// dropQuotes deletes from CHAT others' replies quoting the user, whose
// copies there still hold the snippet: the store has them (the writer's
// floor passed them) with the snippet removed, and pages read them from
// there. It deletes one only once every consumer of CHAT that works
// (pulls, or holds messages unacknowledged) is past it, waiting up to
// quoteWait: a fan-out or push that has not seen the reply must not lose
// it. What it cannot delete yet it leaves to the retention trimmer
// (Counts.QuotesLeft).
func (e *Eraser) dropQuotes(ctx context.Context, r *Report, conv string, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	top := slices.Max(seqs)
	if ok, err := e.consumersPast(ctx, conv, top); err != nil {
		return err
	} else if !ok {
		r.QuotesLeft += len(seqs)
		return nil
	}
	chat := e.chats[e.layout.StreamIndex(conv)]
	for _, seq := range seqs {
		switch err := chat.SecureDeleteMsg(ctx, seq); {
		case err == nil:
			r.StreamDeleted++
		case isNotFound(err):
		case isDenied(err):
			r.StreamDenied++
		default:
			return fmt.Errorf("erase: delete quoting seq %d from %s: %w", seq, e.layout.StreamOf(conv), err)
		}
	}
	return nil
}

// quoteWait bounds dropQuotes' wait for the consumers.
const quoteWait = 10 * time.Second

// consumersPast reports whether every working consumer of CHAT is past
// seq, waiting up to quoteWait. A consumer nobody pulls from (a role not
// running here) does not count.
//
// The consumers are those of conv's message stream (schema.Layout).
func (e *Eraser) consumersPast(ctx context.Context, conv string, seq uint64) (bool, error) {
	chat := e.chats[e.layout.StreamIndex(conv)]
	info, err := chat.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("erase: stream info: %w", err)
	}
	stream := info.Config.Name
	// Only this stream's fan-out consumers: a partition stream CHAT_p has
	// the one of partition p, and the eraser may look up no other (asking
	// for fanout-1 on CHAT_0 was refused, and the erasure failed
	// half-way, with NATTER_E2E_TOPOLOGY=cluster3x4).
	names := append(schema.ChatConsumers(), schema.LayoutOf(info.Config).FanoutConsumersOn(stream)...)
	deadline := time.Now().Add(quoteWait)
	for {
		past := true
		for _, name := range names {
			c, err := e.cfg.JS.Consumer(ctx, stream, name)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("erase: consumer %s: %w", name, err)
			}
			ci := c.CachedInfo()
			working := ci.NumWaiting > 0 || ci.NumAckPending > 0
			caught := ci.AckFloor.Stream >= seq || ci.NumPending == 0 && ci.NumAckPending == 0
			if working && !caught {
				past = false
				break
			}
		}
		if past {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leave removes uid from conv, and deletes their markers of it.
func (e *Eraser) leave(ctx context.Context, r *Report, conv string) error {
	uid := r.User
	d, err := e.cfg.Convs.Get(ctx, conv)
	switch {
	case errors.Is(err, conversation.ErrNotFound):
	case err != nil:
		return fmt.Errorf("erase: read %s: %w", conv, err)
	case d.Kind == protocol.ConversationDirect:
		// The other member keeps it, showing a deleted account; nobody
		// may send in it any more (conversation.Store.MarkErased).
		if _, err := e.cfg.Convs.MarkErased(ctx, conv, uid); err != nil {
			return fmt.Errorf("erase: mark %s erased in %s: %w", uid, conv, err)
		}
		r.DirectKept++
	default:
		_, err := e.cfg.Convs.RemoveAsOperator(ctx, conv, uid)
		switch {
		case err == nil:
			r.Left++
		case errors.Is(err, conversation.ErrNotFound):
			// Removed by a run before (or never a member).
		default:
			return fmt.Errorf("erase: remove %s from %s: %w", uid, conv, err)
		}
	}
	for _, k := range []struct {
		kv  jetstream.KeyValue
		key string
	}{
		{e.convs, conversation.ReadKey(conv, uid)},
		{e.convs, conversation.DeliveredKey(conv, uid)},
		{e.convs, "i.n." + conv + "." + uid}, // inbox mentions (package inbox)
		{e.push, "m." + uid + "." + conv},    // mute (package pushnotify)
	} {
		if err := e.purge(ctx, r, k.kv, k.key); err != nil {
			return err
		}
	}
	return nil
}

// userKeys deletes what the user has outside conversations: devices,
// presence, inbox head, block list, add ring, settings, attachment quota
// and user index.
func (e *Eraser) userKeys(ctx context.Context, r *Report) error {
	uid := r.User
	// First: giving their bytes back writes the quota key, deleted below.
	if e.cfg.Attachments != nil {
		n, err := e.cfg.Attachments.DeleteOwned(ctx, uid)
		if err != nil {
			return fmt.Errorf("erase: attachments owned by %s: %w", uid, err)
		}
		r.Attachments += n
	} else {
		r.AttachmentsSkipped = true
	}
	keys := []struct {
		kv  jetstream.KeyValue
		key string
	}{
		{e.push, "d." + uid},    // devices (package pushnotify)
		{e.pres, "u." + uid},    // last seen (package presence)
		{e.convs, "i.h." + uid}, // inbox head (package inbox)
		{e.convs, "b." + uid},   // block list
		{e.convs, "ar." + uid},  // add ring
		{e.convs, "s." + uid},   // settings
		{e.att, "q." + uid},     // attachment quota (package attachments)
	}
	// Connections (c.<uid>.<gateway>.<session>) are closed by now; their
	// keys go too.
	if l, err := e.pres.ListKeysFiltered(ctx, "c."+uid+".>"); err == nil {
		for k := range l.Keys() {
			keys = append(keys, struct {
				kv  jetstream.KeyValue
				key string
			}{e.pres, k})
		}
	} else if !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("erase: list connections of %s: %w", uid, err)
	}
	for _, k := range keys {
		if err := e.purge(ctx, r, k.kv, k.key); err != nil {
			return err
		}
	}
	// The user index lists the direct conversations kept; it goes last.
	return e.purge(ctx, r, e.convs, "u."+uid)
}

// purge deletes key and its history, counting it when it had a value.
// Keys of PUSH, which the eraser may not read, are purged blind.
func (e *Eraser) purge(ctx context.Context, r *Report, kv jetstream.KeyValue, key string) error {
	blind := kv == e.push
	if !blind {
		if _, err := kv.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("erase: read %s: %w", key, err)
		}
	}
	if err := kv.Purge(ctx, key); err != nil {
		return fmt.Errorf("erase: delete %s: %w", key, err)
	}
	if blind {
		r.PushKeys++
	} else {
		r.Keys++
	}
	return nil
}

// attachments deletes the attachments m's body references.
func (e *Eraser) attachments(ctx context.Context, r *Report, conv string, m *protocol.Message) error {
	ids, ok := protocol.AttachmentIDs(m.Body)
	if !ok || len(ids) == 0 {
		return nil
	}
	if e.cfg.Attachments == nil {
		r.AttachmentsSkipped = true
		return nil
	}
	if err := e.cfg.Attachments.Delete(ctx, conv, ids); err != nil {
		return fmt.Errorf("erase: attachments of %s seq %d: %w", conv, m.Seq, err)
	}
	r.Attachments += len(ids)
	return nil
}

// publishDelete publishes the user's deletion of their message seq and
// returns its seq. Its Nats-Msg-Id makes a run again within the
// de-duplication window store it once; a later run finds the message
// deleted and publishes nothing.
func (e *Eraser) publishDelete(ctx context.Context, conv, uid string, seq uint64) (uint64, error) {
	id := "erase-" + strconv.FormatUint(seq, 10)
	env := protocol.Envelope{Sender: uid, ClientID: id, Kind: protocol.KindDelete, Ref: seq,
		TS: protocol.FormatTime(e.cfg.Now()), Body: json.RawMessage(`{}`)}
	data, err := json.Marshal(&env)
	if err != nil {
		return 0, err
	}
	msg := &nats.Msg{Subject: schema.Msg(conv), Header: nats.Header{schema.HeaderMsgID: []string{"erase:" + uid + ":" + conv + ":" + id}}, Data: data}
	ack, err := e.cfg.JS.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("erase: publish deletion of %s seq %d: %w", conv, seq, err)
	}
	return ack.Sequence, nil
}

// waitFloor waits until the history writer's ack floor on conv's stream
// reaches seq: the store has every row up to it, deletions applied.
func (e *Eraser) waitFloor(ctx context.Context, conv string, seq uint64) error {
	deadline := time.Now().Add(e.cfg.FloorWait)
	hist := e.hists[e.layout.StreamIndex(conv)]
	for {
		info, err := hist.Info(ctx)
		if err != nil {
			return fmt.Errorf("erase: history writer's floor: %w", err)
		}
		if info.AckFloor.Stream >= seq {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("erase: the history writer has not stored seq %d after %s (its floor is %d); run again later", seq, e.cfg.FloorWait, info.AckFloor.Stream)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// isDenied reports JetStream's refusal to delete from a stream that
// denies deletes (nats-server: "message delete not permitted").
func isDenied(err error) bool {
	return errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "not permitted")
}

// isNotFound reports a delete of a seq the stream does not hold: trimmed,
// or deleted by a run before.
func isNotFound(err error) bool {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true
	}
	s := err.Error()
	return errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && (strings.Contains(s, "no message found") || strings.Contains(s, "not found"))
}
