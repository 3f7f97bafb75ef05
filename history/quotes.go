package history

import (
	"context"
	"slices"

	"github.com/natter-chat/natter/protocol"
)

// RowsGetter is a Store that reads the rows of given seqs in one batch
// (localstore: point reads; scyllastore: one query per bucket). The
// Reader uses it to tell which quoted originals are deleted now.
type RowsGetter interface {
	// Rows returns the rows of conv with the given seqs, ascending,
	// leaving out those it does not hold.
	Rows(ctx context.Context, conv string, seqs []uint64) ([]*protocol.Message, error)
}

// resolveQuotes marks the quotes in page whose original has been deleted
// since the reply was sent: deleted, without the snippet, as a quote of
// an original already deleted at send time reads. A quote is copied when
// the reply is sent, so this is resolved when a page is read, with one
// batched read per page (docs/protocol.md, "Replies and threads"): the
// originals on the page itself, those at or below the writer's floor W
// from the store in one Rows call, those above it from the stream's tail,
// whose deletions apply to all of them. A page without a live quote costs
// nothing more.
func (r *Reader) resolveQuotes(ctx context.Context, conv string, page []*protocol.Message) error {
	var pending int
	for _, m := range page {
		if m.Quote != nil && !m.Quote.Deleted {
			pending++
		}
	}
	if pending == 0 {
		return nil
	}
	w, _, err := r.watermark(ctx, conv)
	if err != nil {
		return err
	}
	inPage := make(map[uint64]*protocol.Message, len(page))
	for _, m := range page {
		inPage[m.Seq] = m
	}
	var ask []uint64
	askSet := make(map[uint64]bool, pending)
	for _, m := range page {
		if q := m.Quote; q != nil && !q.Deleted && inPage[q.Seq] == nil && q.Seq <= w && !askSet[q.Seq] {
			askSet[q.Seq] = true
			ask = append(ask, q.Seq)
		}
	}
	tail, err := r.tail(ctx, conv, w)
	if err != nil {
		return err
	}
	originals := make(map[uint64]*protocol.Message, pending)
	if g, ok := r.store.(RowsGetter); ok && len(ask) > 0 {
		slices.Sort(ask)
		rows, err := g.Rows(ctx, conv, ask)
		if err != nil {
			return err
		}
		for _, m := range rows {
			c := *m // the store's row is the caller's, but keep it as read
			originals[m.Seq] = &c
		}
	}
	for _, m := range tail {
		if originals[m.Seq] == nil && inPage[m.Seq] == nil {
			c := *m
			originals[m.Seq] = &c
		}
	}
	list := make([]*protocol.Message, 0, len(originals))
	for _, m := range originals {
		list = append(list, m)
	}
	applyEdits(list, tail)
	for _, m := range page {
		q := m.Quote
		if q == nil || q.Deleted {
			continue
		}
		o := inPage[q.Seq]
		if o == nil {
			o = originals[q.Seq]
		}
		if o != nil && o.Deleted {
			m.Quote = &protocol.Quote{Seq: q.Seq, Sender: q.Sender, Kind: q.Kind, Deleted: true}
		}
	}
	return nil
}
