package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// tailCap bounds how much of the stream tail one read looks at for edits
// to apply; the tail is what the store has not caught up with, normally
// milliseconds of traffic.
const tailCap = 10_000

// Reader answers sync and scroll-back from the store and the stream
// together, so that a client cannot tell where a message came from.
//
// The history writer's ack floor W is the stream seq up to which the store
// has every message. Rows with seq ≤ W come from the store (edits already
// applied); rows above W come from the stream, and edits and deletions
// among them are applied to their targets in the page the same way the
// store applies them.
//
// A store can lack rows below W all the same: it was lost, restored from
// a backup or is being rebuilt (natter history rebuild) while the writer's
// floor stayed put. So where a page's store rows overlap what the stream
// still holds (seqs from its first, F), the Reader checks them against
// the stream (a count of the stream's messages in the range, and a
// stream read of a page's worth when it differs), checks that the
// store has the conversation's newest stream row at or below W (a direct
// get and a short backward read), and, should the store lack either,
// answers that page as if W were F-1: rows from F on come from the
// stream. A store that lacks an edit row amid rows it has still shows
// that edit's target unedited, until natter history rebuild.
//
// With several message streams (schema.Layout) each has its own writer
// consumer, W and F: a conversation's are its stream's.
type Reader struct {
	store  Store
	stream *Stream
	// marks are the watermarks of the message streams, by
	// schema.Layout.StreamIndex.
	marks  []watermark
	maxAge time.Duration

	// flights are the After reads in progress, by what they read.
	fmu     sync.Mutex
	flights map[flightKey]*flight
	// afterHook, when set (by tests), runs at the end of each read of After.
	afterHook func()
}

// flightKey is what an After reads.
type flightKey struct {
	conv  string
	after uint64
	limit int
}

// flight is one After read that callers asking the same share: the
// answer is set before done is closed, and read-only from then on.
type flight struct {
	done chan struct{}
	page []*protocol.Message
	more bool
	err  error
}

// watermark is one message stream's history consumer and its W and F,
// as last read.
type watermark struct {
	cons    jetstream.Consumer
	mu      sync.Mutex
	floor   uint64
	first   uint64
	floorAt time.Time
}

// NewReader returns a reader over store and the message streams.
func NewReader(ctx context.Context, js jetstream.JetStream, store Store, stream *Stream) (*Reader, error) {
	r := &Reader{store: store, stream: stream, maxAge: 250 * time.Millisecond}
	r.marks = make([]watermark, len(stream.parts))
	for i, name := range stream.layout.ChatStreams() {
		cons, err := js.Consumer(ctx, name, schema.ConsumerHistory)
		if err != nil {
			return nil, fmt.Errorf("history consumer on %s: %w", name, err)
		}
		r.marks[i].cons = cons
	}
	return r, nil
}

// watermark returns W and the stream's first seq F (at least 1) of conv's
// stream, refreshed at most every maxAge. A stale W is safe: it only makes
// more of a page come from the stream; so is a stale F, which only widens
// the check against the stream.
func (r *Reader) watermark(ctx context.Context, conv string) (w, first uint64, err error) {
	m := &r.marks[r.stream.layout.StreamIndex(conv)]
	m.mu.Lock()
	if time.Since(m.floorAt) < r.maxAge {
		w, first := m.floor, m.first
		m.mu.Unlock()
		return w, first, nil
	}
	m.mu.Unlock()
	info, err := m.cons.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("history watermark: %w", err)
	}
	first, err = r.stream.First(ctx, conv)
	if err != nil {
		return 0, 0, fmt.Errorf("history watermark: %w", err)
	}
	// The store has every message below the stream's first seq: the
	// trimmer purges only what it has, and a re-partitioned stream starts
	// above every seq of the old streams, which the writer had stored
	// (schema.Repartition), while its fresh consumer's floor says 0.
	floor := max(info.AckFloor.Stream, first-1)
	m.mu.Lock()
	m.floor, m.first, m.floorAt = floor, first, time.Now()
	m.mu.Unlock()
	return floor, first, nil
}

// tail returns conv's stream rows with seq > w, up to tailCap.
func (r *Reader) tail(ctx context.Context, conv string, w uint64) ([]*protocol.Message, error) {
	rows, _, err := r.stream.After(ctx, conv, w, tailCap)
	return rows, err
}

// After returns up to limit rows of conv with seq > after, ascending,
// each with its Prev. The rows are shared with other callers: read them,
// never change them.
//
// Callers asking the same at the same time share one read: a reconnect
// storm has a thousand clients sync the same conversation from the same
// seq. A caller never takes the answer of a read that began before it
// asked (that read might miss a message the caller knows was sent): when
// a read of the same is in progress, it waits for that one to end and
// then leads or joins the next, which began after it asked.
func (r *Reader) After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	k := flightKey{conv, after, limit}
	var seen *flight // in progress when this caller asked
	for {
		r.fmu.Lock()
		f := r.flights[k]
		if f == nil {
			f = &flight{done: make(chan struct{})}
			if r.flights == nil {
				r.flights = make(map[flightKey]*flight)
			}
			r.flights[k] = f
			r.fmu.Unlock()
			f.page, f.more, f.err = r.after1(ctx, conv, after, limit)
			r.fmu.Lock()
			delete(r.flights, k)
			r.fmu.Unlock()
			close(f.done)
			return f.page[:len(f.page):len(f.page)], f.more, f.err
		}
		r.fmu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, false, fmt.Errorf("read %s after %d: %w", conv, after, ctx.Err())
		}
		if seen == nil {
			seen = f // began before this caller asked: not its answer
			continue
		}
		// f began after seen ended, so after this caller asked. Its leader's
		// context ending is not this caller's error: ask again.
		if f.err != nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) && ctx.Err() == nil {
			seen = nil
			continue
		}
		return f.page[:len(f.page):len(f.page)], f.more, f.err
	}
}

// after1 is After for one caller.
func (r *Reader) after1(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	page, more, err := r.rowsAfter(ctx, conv, after, limit)
	if err != nil || len(page) == 0 {
		return page, more, err
	}
	var prev uint64
	if after > 0 {
		// The page may start anywhere: ask for the item before it. A
		// sync from 0 starts at the conversation's first item.
		if prev, err = r.prevOf(ctx, conv, page[0].Seq); err != nil {
			return nil, false, err
		}
	}
	chainPrev(page, prev)
	if err := r.resolveQuotes(ctx, conv, page); err != nil {
		return nil, false, err
	}
	if r.afterHook != nil {
		r.afterHook()
	}
	return page, more, nil
}

// prevOf returns the seq of conv's newest item below seq, 0 if none. Only
// a seq is needed, not a row with its edits, so it does not merge the tail
// as Before does (which reads the whole tail the store lacks, a lot when
// the writer lags behind large messages): it asks the stream, which holds
// every item from its first seq on, with a direct get of the subject's
// last message below seq (Stream.ItemBefore), and only when the stream has
// none, the store.
func (r *Reader) prevOf(ctx context.Context, conv string, seq uint64) (uint64, error) {
	if prev, err := r.stream.ItemBefore(ctx, conv, seq); err != nil || prev != 0 {
		return prev, err
	}
	rows, _, err := r.store.Before(ctx, conv, seq, 1)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	return rows[0].Seq, nil
}

// PrevOf is the seq of conv's newest item below seq, 0 if none: the prev
// an After page starting at seq carries (prevOf), for the fan-out, which
// needs only that seq for its pushes (fanout.PrevOfer).
func (r *Reader) PrevOf(ctx context.Context, conv string, seq uint64) (uint64, error) {
	return r.prevOf(ctx, conv, seq)
}

// rowsAfter is After without Prev.
func (r *Reader) rowsAfter(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	w, first, err := r.watermark(ctx, conv)
	if err != nil {
		return nil, false, err
	}
	var gap bool
	if after < w { // else the page is all stream rows
		if gap, err = r.lacksNewest(ctx, conv, w, first); err != nil {
			return nil, false, err
		}
	}
	var page []*protocol.Message
	var more bool
	if !gap {
		page, more, gap, err = r.after(ctx, conv, after, limit, w, first)
	}
	if gap {
		page, more, _, err = r.after(ctx, conv, after, limit, first-1, first)
	}
	return page, more, err
}

// after answers After with w as the store's floor; gap reports that the
// store lacks a row the stream holds at or below w.
func (r *Reader) after(ctx context.Context, conv string, after uint64, limit int, w, first uint64) (page []*protocol.Message, more, gap bool, err error) {
	// The tail is read even when the page comes from the store: an edit in
	// it may target a stored message on this page. Edits come after their
	// targets, so the tail can start at after.
	tail, err := r.tail(ctx, conv, max(after, w))
	if err != nil {
		return nil, false, false, err
	}
	if after < w {
		rows, _, err := r.store.After(ctx, conv, after, limit+1)
		if err != nil {
			return nil, false, false, err
		}
		now := time.Now()
		for _, m := range rows {
			if m.Seq <= w && !m.Expired(now) {
				page = append(page, m)
			}
		}
		if first <= w {
			upTo := w
			if len(rows) > limit {
				upTo = min(w, rows[len(rows)-1].Seq) // the store was asked for no more
			}
			if gap, err := r.storeLacks(ctx, conv, max(after, first-1), upTo, limit+1, page); gap || err != nil {
				return nil, false, gap, err
			}
		}
	}
	for _, m := range tail {
		if m.Seq > after && len(page) <= limit {
			page = append(page, m)
		}
	}
	more = len(page) > limit
	if more {
		page = page[:limit]
	}
	applyEdits(page, tail)
	return page, more, false, nil
}

// lacksNewest reports whether the store lacks conv's newest row in the
// stream at or below w. A store lost or restored from a backup misses its
// newest rows, and with them the edits of older rows that no check of a
// page's own rows would notice.
func (r *Reader) lacksNewest(ctx context.Context, conv string, w, first uint64) (bool, error) {
	if first > w {
		return false, nil
	}
	last, err := r.stream.Last(ctx, conv)
	if err != nil || last < first {
		return false, err
	}
	// Read back from there: the newest message may be above w, or not a
	// valid envelope (which the writer does not store).
	newest, _, err := r.stream.Before(ctx, conv, min(last, w)+1, 1)
	if err != nil || len(newest) == 0 {
		return false, err
	}
	stored, err := r.store.Last(ctx, conv)
	if err != nil {
		return false, err
	}
	return stored < newest[0].Seq, nil
}

// storeLacks reports whether the stream holds a row of conv in (from, upTo]
// that rows, the store's rows of that range, lack. It reads up to n
// stream rows: a page's worth is enough to tell for the page.
//
// First it only counts: when the stream holds as many messages in the
// range as rows has there (Stream.span), the store has them all, and no
// message is read. A count that differs (the store lacks rows, or the
// stream holds an invalid envelope the writer skipped) reads the rows.
func (r *Reader) storeLacks(ctx context.Context, conv string, from, upTo uint64, n int, rows []*protocol.Message) (bool, error) {
	if from >= upTo {
		return false, nil
	}
	count, first, ok, err := r.stream.span(ctx, conv, from, upTo)
	if err != nil {
		return false, err
	}
	if ok && first == 0 {
		return false, nil // the stream holds none of the range
	}
	if ok {
		var have uint64
		for _, m := range rows {
			if m.Seq >= first && m.Seq <= upTo {
				have++
			}
		}
		if have == count {
			return false, nil
		}
	}
	inStream, _, err := r.stream.After(ctx, conv, from, n)
	if err != nil {
		return false, err
	}
	have := make(map[uint64]bool, len(rows))
	for _, m := range rows {
		have[m.Seq] = true
	}
	for _, m := range inStream {
		if m.Seq > upTo {
			break
		}
		if !have[m.Seq] {
			return true, nil
		}
	}
	return false, nil
}

// Before returns the newest limit rows of conv with seq < before (0: the
// newest), ascending, and whether older ones exist, each with its Prev.
func (r *Reader) Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error) {
	// One row more than asked is the first row's Prev, read in the same
	// pass; when there is none, the page starts at the first item.
	rows, more, err := r.rowsBefore(ctx, conv, before, limit+1)
	if err != nil {
		return nil, false, err
	}
	var prev uint64
	if len(rows) > limit {
		prev, rows, more = rows[0].Seq, rows[1:], true
	} else if more && len(rows) > 0 {
		// Not expected of the paths below, but a short page that says
		// older rows exist must not claim to start at the first item.
		older, _, err := r.rowsBefore(ctx, conv, rows[0].Seq, 1)
		if err != nil {
			return nil, false, err
		}
		if len(older) > 0 {
			prev = older[0].Seq
		}
	}
	chainPrev(rows, prev)
	if err := r.resolveQuotes(ctx, conv, rows); err != nil {
		return nil, false, err
	}
	return rows, more, nil
}

// rowsBefore is Before without Prev.
func (r *Reader) rowsBefore(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error) {
	w, first, err := r.watermark(ctx, conv)
	if err != nil {
		return nil, false, err
	}
	gap, err := r.lacksNewest(ctx, conv, w, first)
	if err != nil {
		return nil, false, err
	}
	var page []*protocol.Message
	var more bool
	if !gap {
		page, more, gap, err = r.before(ctx, conv, before, limit, w, first)
	}
	if gap {
		page, more, _, err = r.before(ctx, conv, before, limit, first-1, first)
	}
	return page, more, err
}

// before answers Before with w as the store's floor; gap reports that the
// store lacks a row the stream holds at or below w.
func (r *Reader) before(ctx context.Context, conv string, before uint64, limit int, w, first uint64) ([]*protocol.Message, bool, bool, error) {
	tail, err := r.tail(ctx, conv, w)
	if err != nil {
		return nil, false, false, err
	}
	if len(tail) >= tailCap {
		// The writer is far behind: page from the stream alone.
		page, more, err := r.stream.Before(ctx, conv, before, limit)
		if err == nil {
			applyEdits(page, page)
		}
		return page, more, false, err
	}
	var newer []*protocol.Message
	for _, m := range tail {
		if before == 0 || m.Seq < before {
			newer = append(newer, m)
		}
	}
	if len(newer) > limit {
		page := newer[len(newer)-limit:]
		applyEdits(page, tail)
		return page, true, false, nil
	}
	bound := w + 1
	if before != 0 && before < bound {
		bound = before
	}
	var older []*protocol.Message
	var more bool
	if need := limit - len(newer); need > 0 {
		if older, more, err = r.store.Before(ctx, conv, bound, need); err != nil {
			return nil, false, false, err
		}
		older = protocol.FilterExpired(older, time.Now())
		if first < bound {
			// Every stream row from the oldest of a full page on must be
			// in it; of a page with nothing older, every one.
			from := first - 1
			if len(older) == need && more && older[0].Seq-1 > from {
				from = older[0].Seq - 1
			}
			if gap, err := r.storeLacks(ctx, conv, from, bound-1, need+1, older); gap || err != nil {
				return nil, false, gap, err
			}
		}
	} else {
		// The page is full of stream rows; ask the store only whether
		// anything older exists.
		var probe []*protocol.Message
		if probe, _, err = r.store.Before(ctx, conv, bound, 1); err != nil {
			return nil, false, false, err
		}
		more = len(probe) > 0
	}
	page := append(older, newer...)
	applyEdits(page, tail)
	return page, more, false, nil
}

// Last returns the highest seq of conv in the store or the stream, the
// stream's as its leader has it (Stream.LeaderLast): what clients are
// shown as last_seq and their markers are clamped to counts every
// acknowledged message.
func (r *Reader) Last(ctx context.Context, conv string) (uint64, error) {
	a, err := r.stream.LeaderLast(ctx, conv)
	if err != nil {
		return 0, err
	}
	b, err := r.store.Last(ctx, conv)
	if err != nil {
		return 0, err
	}
	return max(a, b), nil
}

// Get returns the row with seq in conv, from the store or the stream,
// with what the stream's tail changed of it applied (edits, a deletion,
// thread replies), or ErrNotFound. A row at or below the writer's floor W
// is read from the store, which applied the events up to W; one above it
// from the stream, whose events after it are all in the tail.
func (r *Reader) Get(ctx context.Context, conv string, seq uint64) (*protocol.Message, error) {
	if seq == 0 {
		return nil, ErrNotFound
	}
	w, _, err := r.watermark(ctx, conv)
	if err != nil {
		return nil, err
	}
	var m *protocol.Message
	from := seq
	if seq <= w {
		rows, _, err := r.store.After(ctx, conv, seq-1, 1)
		if err != nil {
			return nil, err
		}
		if len(rows) > 0 && rows[0].Seq == seq {
			if rows[0].Expired(time.Now()) {
				return nil, ErrNotFound
			}
			m, from = rows[0], w
		}
	}
	if m == nil {
		// Above W, or a store that lacks it (lost, being rebuilt): the
		// stream, whose rows after it are all in the tail from seq.
		if m, err = r.stream.Get(ctx, conv, seq); err != nil {
			return nil, err
		}
	}
	tail, err := r.tail(ctx, conv, from)
	if err != nil {
		return nil, err
	}
	applyEdits([]*protocol.Message{m}, tail)
	return m, nil
}

// CountAfter counts conv's plain messages with seq > after, saturating at
// limit: the store's count, plus the stream rows the store does not have
// yet.
func (r *Reader) CountAfter(ctx context.Context, conv string, after uint64, limit int) (uint64, error) {
	// The writer appends while we read: the count and the store's last seq
	// must describe the same store, or rows appended in between are counted
	// twice or not at all (the stream part starts above last). Read last on
	// both sides of the count until it did not move.
	var inStore, last uint64
	for try := 0; ; try++ {
		before, err := r.store.Last(ctx, conv)
		if err != nil {
			return 0, err
		}
		if inStore, err = r.store.Count(ctx, conv, after); err != nil {
			return 0, err
		}
		if last, err = r.store.Last(ctx, conv); err != nil {
			return 0, err
		}
		if last == before || try == 4 {
			break
		}
	}
	inTail, err := r.stream.CountAfter(ctx, conv, max(after, last), limit)
	if err != nil {
		return 0, err
	}
	return min(inStore+inTail, uint64(limit)), nil
}

// chainPrev sets the Prev of every row of page, ascending and contiguous in
// sync order: the first row's is prev (the seq of the item before the
// page, 0 if it starts at the conversation's first), each other row's is
// the seq of the row before it. It is the one place pages get Prev; the
// fan-out stamps live pushes to agree with it (docs/architecture.md).
func chainPrev(page []*protocol.Message, prev uint64) {
	for _, m := range page {
		m.Prev, prev = prev, m.Seq
	}
}

// applyEdits applies the edits and deletions among events to the targets
// in page, by Apply, and counts the thread replies among them on their
// roots in page, by ApplyThread. Rows that came from the store already
// carry what the store applied; applying again changes nothing.
func applyEdits(page, events []*protocol.Message) {
	if len(page) == 0 {
		return
	}
	bySeq := make(map[uint64]*protocol.Message, len(page))
	for _, m := range page {
		bySeq[m.Seq] = m
	}
	for _, ev := range events {
		if ev.Thread != 0 {
			if t := bySeq[ev.Thread]; t != nil {
				ApplyThread(t, ev)
			}
			continue
		}
		if t := bySeq[ev.Ref]; t != nil {
			Apply(t, ev)
		}
	}
}
