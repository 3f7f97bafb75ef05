package history

import (
	"context"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// ThreadAfter returns up to limit replies of the thread under root in
// conv with seq > after, ascending, and whether more follow: replies at
// or below the writer's floor W from the store's thread index, newer ones
// from the stream's tail, with the tail's edits and deletions applied.
// Thread pages carry no Prev: it chains the conversation's sync order,
// where the replies are items too.
//
// The store is checked against the stream as After checks it: a store
// that lacks the conversation's newest row at or below W (lost, restored
// from a backup, being rebuilt), or lacks a reply of the thread that the
// stream holds in the range of the page's store rows, is read as if W
// were the stream's first seq minus one: replies from there on come from
// the stream.
func (r *Reader) ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) ([]*protocol.Message, bool, error) {
	w, first, err := r.watermark(ctx, conv)
	if err != nil {
		return nil, false, err
	}
	var gap bool
	if after < w {
		if gap, err = r.lacksNewest(ctx, conv, w, first); err != nil {
			return nil, false, err
		}
	}
	var page []*protocol.Message
	var more bool
	if !gap {
		page, more, gap, err = r.threadAfter(ctx, conv, root, after, limit, w, first)
	}
	if gap {
		page, more, _, err = r.threadAfter(ctx, conv, root, after, limit, first-1, first)
	}
	if err == nil {
		err = r.resolveQuotes(ctx, conv, page)
	}
	return page, more, err
}

// threadAfter answers ThreadAfter with w as the store's floor; gap
// reports that the store lacks a reply the stream holds at or below w.
func (r *Reader) threadAfter(ctx context.Context, conv string, root, after uint64, limit int, w, first uint64) (page []*protocol.Message, more, gap bool, err error) {
	// Edits come after their targets: the tail can start at after.
	tail, err := r.tail(ctx, conv, max(after, w))
	if err != nil {
		return nil, false, false, err
	}
	if after < w {
		rows, _, err := r.store.ThreadAfter(ctx, conv, root, after, limit+1)
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
			if gap, err := r.threadStoreLacks(ctx, conv, root, max(after, first-1), upTo, page); gap || err != nil {
				return nil, false, gap, err
			}
		}
	}
	for _, m := range tail {
		if len(page) > limit {
			break
		}
		if m.Seq > after && inThread(m, root) {
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

// ThreadBefore returns the newest limit replies of the thread under root
// in conv with seq < before (0: the newest), ascending, and whether older
// ones exist; where they come from, and the check of the store against
// the stream, as for ThreadAfter.
func (r *Reader) ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) ([]*protocol.Message, bool, error) {
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
		page, more, gap, err = r.threadBefore(ctx, conv, root, before, limit, w, first)
	}
	if gap {
		page, more, _, err = r.threadBefore(ctx, conv, root, before, limit, first-1, first)
	}
	if err == nil {
		err = r.resolveQuotes(ctx, conv, page)
	}
	return page, more, err
}

// threadBefore answers ThreadBefore with w as the store's floor; gap
// reports that the store lacks a reply the stream holds at or below w.
func (r *Reader) threadBefore(ctx context.Context, conv string, root, before uint64, limit int, w, first uint64) ([]*protocol.Message, bool, bool, error) {
	tail, err := r.tail(ctx, conv, w)
	if err != nil {
		return nil, false, false, err
	}
	var newer []*protocol.Message
	for _, m := range tail {
		if (before == 0 || m.Seq < before) && inThread(m, root) {
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
		if older, more, err = r.store.ThreadBefore(ctx, conv, root, bound, need); err != nil {
			return nil, false, false, err
		}
		older = protocol.FilterExpired(older, time.Now())
		if first < bound {
			// Every reply the stream holds from the oldest of a full page
			// on must be in it; of a page with nothing older, every one.
			from := first - 1
			if len(older) == need && more && older[0].Seq-1 > from {
				from = older[0].Seq - 1
			}
			if gap, err := r.threadStoreLacks(ctx, conv, root, from, bound-1, older); gap || err != nil {
				return nil, false, gap, err
			}
		}
	} else {
		var probe []*protocol.Message
		if probe, _, err = r.store.ThreadBefore(ctx, conv, root, bound, 1); err != nil {
			return nil, false, false, err
		}
		more = len(probe) > 0
	}
	page := append(older, newer...)
	applyEdits(page, tail)
	return page, more, false, nil
}

// threadStoreLacks reports whether the stream holds a reply of the thread
// under root in (from, upTo] that rows, the store's replies of that
// range, lack. A thread's replies are scattered among the conversation's
// items, so no count of the stream tells (storeLacks counts items): it
// reads the range's items, up to tailCap of them, as the tail read does;
// when the stream holds none of the range (the common case for a page
// older than the stream's window) it only asks the stream for a count.
func (r *Reader) threadStoreLacks(ctx context.Context, conv string, root, from, upTo uint64, rows []*protocol.Message) (bool, error) {
	if from >= upTo {
		return false, nil
	}
	_, first, ok, err := r.stream.span(ctx, conv, from, upTo)
	if err != nil || (ok && first == 0) {
		return false, err
	}
	inStream, _, err := r.stream.After(ctx, conv, from, tailCap)
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
		if inThread(m, root) && !have[m.Seq] {
			return true, nil
		}
	}
	return false, nil
}

// inThread reports whether m is a reply in the thread under root.
func inThread(m *protocol.Message, root uint64) bool {
	return m.Thread == root && m.Kind == protocol.KindMessage
}
