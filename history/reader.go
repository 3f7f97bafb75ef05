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
type Reader struct {
	store  Store
	stream *Stream
	cons   jetstream.Consumer

	mu      sync.Mutex
	floor   uint64
	floorAt time.Time
	maxAge  time.Duration
}

// NewReader returns a reader over store and the CHAT stream.
func NewReader(ctx context.Context, js jetstream.JetStream, store Store, stream *Stream) (*Reader, error) {
	cons, err := js.Consumer(ctx, schema.StreamChat, schema.ConsumerHistory)
	if err != nil {
		return nil, fmt.Errorf("history consumer: %w", err)
	}
	return &Reader{store: store, stream: stream, cons: cons, maxAge: 250 * time.Millisecond}, nil
}

// watermark returns W, refreshed at most every maxAge. A stale W is safe:
// it only makes more of a page come from the stream.
func (r *Reader) watermark(ctx context.Context) (uint64, error) {
	r.mu.Lock()
	if time.Since(r.floorAt) < r.maxAge {
		w := r.floor
		r.mu.Unlock()
		return w, nil
	}
	r.mu.Unlock()
	info, err := r.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("history watermark: %w", err)
	}
	r.mu.Lock()
	r.floor, r.floorAt = info.AckFloor.Stream, time.Now()
	r.mu.Unlock()
	return info.AckFloor.Stream, nil
}

// tail returns conv's stream rows with seq > w, up to tailCap.
func (r *Reader) tail(ctx context.Context, conv string, w uint64) ([]*protocol.Message, error) {
	rows, _, err := r.stream.After(ctx, conv, w, tailCap)
	return rows, err
}

// After returns up to limit rows of conv with seq > after, ascending.
func (r *Reader) After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	w, err := r.watermark(ctx)
	if err != nil {
		return nil, false, err
	}
	// The tail is read even when the page comes from the store: an edit in
	// it may target a stored message on this page. Edits come after their
	// targets, so the tail can start at after.
	tail, err := r.tail(ctx, conv, max(after, w))
	if err != nil {
		return nil, false, err
	}
	var page []*protocol.Message
	if after < w {
		rows, _, err := r.store.After(ctx, conv, after, limit+1)
		if err != nil {
			return nil, false, err
		}
		for _, m := range rows {
			if m.Seq <= w {
				page = append(page, m)
			}
		}
	}
	for _, m := range tail {
		if m.Seq > after && len(page) <= limit {
			page = append(page, m)
		}
	}
	more := len(page) > limit
	if more {
		page = page[:limit]
	}
	applyEdits(page, tail)
	return page, more, nil
}

// Before returns the newest limit rows of conv with seq < before (0: the
// newest), ascending, and whether older ones exist.
func (r *Reader) Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error) {
	w, err := r.watermark(ctx)
	if err != nil {
		return nil, false, err
	}
	tail, err := r.tail(ctx, conv, w)
	if err != nil {
		return nil, false, err
	}
	if len(tail) >= tailCap {
		// The writer is far behind: page from the stream alone.
		page, more, err := r.stream.Before(ctx, conv, before, limit)
		if err == nil {
			applyEdits(page, page)
		}
		return page, more, err
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
		return page, true, nil
	}
	bound := w + 1
	if before != 0 && before < bound {
		bound = before
	}
	var older []*protocol.Message
	var more bool
	if need := limit - len(newer); need > 0 {
		older, more, err = r.store.Before(ctx, conv, bound, need)
	} else {
		// The page is full of stream rows; ask the store only whether
		// anything older exists.
		var probe []*protocol.Message
		probe, _, err = r.store.Before(ctx, conv, bound, 1)
		more = len(probe) > 0
	}
	if err != nil {
		return nil, false, err
	}
	page := append(older, newer...)
	applyEdits(page, tail)
	return page, more, nil
}

// Last returns the highest seq of conv in the store or the stream.
func (r *Reader) Last(ctx context.Context, conv string) (uint64, error) {
	a, err := r.stream.Last(ctx, conv)
	if err != nil {
		return 0, err
	}
	b, err := r.store.Last(ctx, conv)
	if err != nil {
		return 0, err
	}
	return max(a, b), nil
}

// Get returns the row with seq in conv, from the stream or the store, or
// ErrNotFound.
func (r *Reader) Get(ctx context.Context, conv string, seq uint64) (*protocol.Message, error) {
	m, err := r.stream.Get(ctx, conv, seq)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return m, err
	}
	if seq == 0 {
		return nil, ErrNotFound
	}
	rows, _, err := r.store.After(ctx, conv, seq-1, 1)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || rows[0].Seq != seq {
		return nil, ErrNotFound
	}
	return rows[0], nil
}

// CountAfter counts conv's plain messages with seq > after, saturating at
// limit: the store's count, plus the stream rows the store does not have
// yet.
func (r *Reader) CountAfter(ctx context.Context, conv string, after uint64, limit int) (uint64, error) {
	inStore, err := r.store.Count(ctx, conv, after)
	if err != nil {
		return 0, err
	}
	last, err := r.store.Last(ctx, conv)
	if err != nil {
		return 0, err
	}
	inTail, err := r.stream.CountAfter(ctx, conv, max(after, last), limit)
	if err != nil {
		return 0, err
	}
	return min(inStore+inTail, uint64(limit)), nil
}

// applyEdits applies the edits and deletions among events to the targets
// in page, by Apply. Rows that came from the store already carry what the
// store applied; applying again changes nothing.
func applyEdits(page, events []*protocol.Message) {
	if len(page) == 0 {
		return
	}
	bySeq := make(map[uint64]*protocol.Message, len(page))
	for _, m := range page {
		bySeq[m.Seq] = m
	}
	for _, ev := range events {
		if t := bySeq[ev.Ref]; t != nil {
			Apply(t, ev)
		}
	}
}
