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
// Unlike After it does not check the store against the stream: a store
// lost or being rebuilt misses replies here until natter history rebuild.
func (r *Reader) ThreadAfter(ctx context.Context, conv string, root, after uint64, limit int) ([]*protocol.Message, bool, error) {
	w, _, err := r.watermark(ctx)
	if err != nil {
		return nil, false, err
	}
	tail, err := r.tail(ctx, conv, w)
	if err != nil {
		return nil, false, err
	}
	var page []*protocol.Message
	if after < w {
		rows, _, err := r.store.ThreadAfter(ctx, conv, root, after, limit+1)
		if err != nil {
			return nil, false, err
		}
		now := time.Now()
		for _, m := range rows {
			if m.Seq <= w && !m.Expired(now) {
				page = append(page, m)
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
	more := len(page) > limit
	if more {
		page = page[:limit]
	}
	applyEdits(page, tail)
	return page, more, nil
}

// ThreadBefore returns the newest limit replies of the thread under root
// in conv with seq < before (0: the newest), ascending, and whether older
// ones exist; where they come from as for ThreadAfter.
func (r *Reader) ThreadBefore(ctx context.Context, conv string, root, before uint64, limit int) ([]*protocol.Message, bool, error) {
	w, _, err := r.watermark(ctx)
	if err != nil {
		return nil, false, err
	}
	tail, err := r.tail(ctx, conv, w)
	if err != nil {
		return nil, false, err
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
		return page, true, nil
	}
	bound := w + 1
	if before != 0 && before < bound {
		bound = before
	}
	var older []*protocol.Message
	var more bool
	if need := limit - len(newer); need > 0 {
		older, more, err = r.store.ThreadBefore(ctx, conv, root, bound, need)
		older = protocol.FilterExpired(older, time.Now())
	} else {
		var probe []*protocol.Message
		probe, _, err = r.store.ThreadBefore(ctx, conv, root, bound, 1)
		more = len(probe) > 0
	}
	if err != nil {
		return nil, false, err
	}
	page := append(older, newer...)
	applyEdits(page, tail)
	return page, more, nil
}

// inThread reports whether m is a reply in the thread under root.
func inThread(m *protocol.Message, root uint64) bool {
	return m.Thread == root && m.Kind == protocol.KindMessage
}
