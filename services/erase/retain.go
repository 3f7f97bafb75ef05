package erase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Retention (retention_days, docs/protocol.md "Retention"): a
// conversation's owner may keep its messages only so many days. Messages
// sent under it carry expires_at and disappear like a ttl's; the
// retention sweeper (RunRetention) removes the rest: every item of the
// conversation older than the retention, also those stored before it was
// set. It runs next to the history store on the eraser's connection (the
// one role that may delete from CHAT), every RetainConfig.Every, and for
// each conversation with a retention:
//
//  1. reads its rows from the oldest (the history Reader: store and
//     stream together) up to the first one sent within the retention;
//  2. deletes the attachments those messages reference;
//  3. deletes them from CHAT by seq (a message still in the hot window);
//  4. once the search consumer is past them, asks the indexer to forget
//     them (search.Remote.Forget; nothing to do when no indexer ever read
//     the search consumer: search is off);
//  5. drops them from the history store (history.Dropper), last: a pass
//     that stops before finds them in the store again and does it all
//     again, each step idempotent.
//
// Every kind of item goes (messages, edits, reactions, deletions,
// membership events): the conversation's history starts N days ago.
// Thread counts stay right: a reply is newer than its root, so a dropped
// reply's root is dropped too. Unread counts of a conversation with a
// retention come from the history store (gateway), which no longer
// counts what was dropped.

// Forgetter removes messages from the search index: search.Remote.
type Forgetter interface {
	// Forget removes seqs of conv from the index.
	Forget(ctx context.Context, conv string, seqs []uint64) error
}

// RetainConfig is what the retention sweeper works with, besides the
// Eraser's Config.
type RetainConfig struct {
	// Store drops rows: the history store.
	Store history.Dropper
	// Search, optional, forgets dropped messages.
	Search Forgetter
	// Every is the time between passes; default 1 minute.
	Every time.Duration
	// MaxPerPass bounds the items one pass drops of one conversation;
	// the rest wait for the next pass. Default 10000.
	MaxPerPass int
	// Now is the sweeper's clock; time.Now by default. (Tests move it
	// days ahead: a retention is at least a day.)
	Now func() time.Time
}

// RetainReport is what one pass of the retention sweeper did.
type RetainReport struct {
	// Convs is how many conversations have a retention.
	Convs int
	// Dropped counts the items dropped from the store; StreamDeleted
	// those deleted from CHAT; Forgotten the messages the search index
	// was asked to forget; Attachments the attachments deleted.
	Dropped, StreamDeleted, Forgotten, Attachments int
	// Errors counts the conversations the pass failed in (logged; the
	// next pass tries again).
	Errors int
}

// RunRetention sweeps until ctx ends. It watches the conversation
// documents for their retention and sweeps every cfg.Every.
func (e *Eraser) RunRetention(ctx context.Context, cfg RetainConfig) error {
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.MaxPerPass <= 0 {
		cfg.MaxPerPass = 10_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w, err := e.convs.Watch(ctx, "c.*", jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("retention: watch conversations: %w", err)
	}
	defer func() { _ = w.Stop() }()
	r := &retainer{e: e, cfg: cfg, days: map[string]int64{}, floors: map[string]uint64{}}
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case kv, ok := <-w.Updates():
			if !ok {
				return errors.New("retention: the conversations watch ended")
			}
			if kv != nil {
				r.note(kv)
			}
		case <-t.C:
			r.pass(ctx)
		}
	}
}

// StartRetention runs the retention sweeper (RunRetention) in the
// background until the service stops, starting it again should it fail.
func (s *Service) StartRetention(cfg RetainConfig) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			err := s.e.RunRetention(s.ctx, cfg)
			if s.ctx.Err() != nil {
				return
			}
			s.e.cfg.Logger.Warn("retention sweeper stopped; starting it again", "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	}()
}

// retainer is one sweeper's state.
type retainer struct {
	e   *Eraser
	cfg RetainConfig
	// days is the retention of each conversation that has one.
	days map[string]int64
	// floors is, per conversation, the highest seq dropped so far: the
	// next pass reads from there, not over what is gone.
	floors map[string]uint64
}

// note takes a conversation document's retention.
func (r *retainer) note(kv jetstream.KeyValueEntry) {
	conv := strings.TrimPrefix(kv.Key(), "c.")
	var d struct {
		RetentionDays int64 `json:"retention_days"`
	}
	if kv.Operation() != jetstream.KeyValuePut || json.Unmarshal(kv.Value(), &d) != nil || d.RetentionDays <= 0 {
		delete(r.days, conv)
		return
	}
	r.days[conv] = d.RetentionDays
}

// pass sweeps every conversation with a retention once.
func (r *retainer) pass(ctx context.Context) RetainReport {
	rep := RetainReport{Convs: len(r.days)}
	convs := make([]string, 0, len(r.days))
	for c := range r.days {
		convs = append(convs, c)
	}
	slices.Sort(convs)
	for _, conv := range convs {
		if ctx.Err() != nil {
			break
		}
		cutoff := r.cfg.Now().Add(-time.Duration(r.days[conv]) * 24 * time.Hour)
		if err := r.conv(ctx, &rep, conv, cutoff); err != nil && ctx.Err() == nil {
			rep.Errors++
			r.e.cfg.Logger.Warn("retention sweep failed; the next pass tries again", "conv", conv, "err", err)
		}
	}
	if rep.Dropped > 0 {
		r.e.cfg.Logger.Info("retention sweep", "convs", rep.Convs, "dropped", rep.Dropped,
			"stream_deleted", rep.StreamDeleted, "forgotten", rep.Forgotten, "attachments", rep.Attachments)
	}
	return rep
}

// conv drops conv's items sent before cutoff.
func (r *retainer) conv(ctx context.Context, rep *RetainReport, conv string, cutoff time.Time) error {
	var drop, plain []uint64
	var files [][]string
	after := r.floors[conv]
scan:
	for len(drop) < r.cfg.MaxPerPass {
		page, more, err := r.e.cfg.Pages.After(ctx, conv, after, min(pageSize, r.cfg.MaxPerPass-len(drop)))
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		for _, m := range page {
			if ts, err := time.Parse(time.RFC3339Nano, m.TS); err == nil && !ts.Before(cutoff) {
				break scan // within the retention, and so is what follows
			}
			drop = append(drop, m.Seq)
			if m.Kind != protocol.KindMessage {
				continue
			}
			plain = append(plain, m.Seq)
			if ids, ok := protocol.AttachmentIDs(m.Body); ok && len(ids) > 0 {
				files = append(files, ids)
			}
		}
		if !more || len(page) == 0 {
			break
		}
		after = page[len(page)-1].Seq
	}
	if len(drop) == 0 {
		return nil
	}
	if a := r.e.cfg.Attachments; a != nil {
		for _, ids := range files {
			if err := a.Delete(ctx, conv, ids); err != nil {
				return fmt.Errorf("attachments: %w", err)
			}
			rep.Attachments += len(ids)
		}
	}
	chat := r.e.chats[r.e.layout.StreamIndex(conv)]
	for _, seq := range drop {
		switch err := chat.DeleteMsg(ctx, seq); {
		case err == nil:
			rep.StreamDeleted++
		case isNotFound(err):
			// Trimmed already (older than the hot window), or expired.
		default:
			return fmt.Errorf("delete seq %d from %s: %w", seq, r.e.layout.StreamOf(conv), err)
		}
	}
	if err := r.forget(ctx, conv, plain); err != nil {
		return err
	}
	rep.Forgotten += len(plain)
	if err := r.cfg.Store.Drop(ctx, conv, drop); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	rep.Dropped += len(drop)
	r.floors[conv] = drop[len(drop)-1]
	return nil
}

// searchWait bounds the wait for the search consumer to be past what a
// pass deleted from CHAT.
const searchWait = 30 * time.Second

// forget asks the indexer to forget seqs of conv, once the search
// consumer of conv's stream is past them: the indexer can no longer
// fetch them from CHAT (they are deleted), but it may hold them in a
// batch it has not written yet, which a forget before would not undo.
func (r *retainer) forget(ctx context.Context, conv string, seqs []uint64) error {
	if r.cfg.Search == nil || len(seqs) == 0 {
		return nil
	}
	top := slices.Max(seqs)
	stream := r.e.layout.StreamOf(conv)
	deadline := time.Now().Add(searchWait)
	for {
		c, err := r.e.cfg.JS.Consumer(ctx, stream, schema.ConsumerSearch)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil // search was never set up
		}
		if err != nil {
			return fmt.Errorf("search consumer: %w", err)
		}
		ci := c.CachedInfo()
		if ci.Delivered.Consumer == 0 {
			return nil // no indexer ever read it: search is off, no index holds them
		}
		if ci.AckFloor.Stream >= top || ci.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the search consumer's floor %d has not passed seq %d in %s", ci.AckFloor.Stream, top, searchWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	// An indexer that read the consumer but is down now fails the pass:
	// the next one tries again, so its index does not keep them.
	if err := r.cfg.Search.Forget(ctx, conv, seqs); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return nil
}
