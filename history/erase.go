package history

import (
	"context"

	"github.com/natter-chat/natter/protocol"
)

// Eraser is a Store that erases rows: the store's part of erasing a user
// (services/erase). Both stores implement it and pass storetest's
// erase suite.
type Eraser interface {
	// Erase makes each row of conv at seqs a tombstone, whatever its kind
	// (a message, an edit, a reaction): Deleted true and Body {}, with no
	// trace of the body or of an edit's body left to read; Sender, Kind,
	// Ref and TS stay. It removes the snippet of the quote of each row of
	// conv at unquote (Quote.Deleted true, Snippet ""): rows of others
	// quoting an erased message. Seqs not stored are skipped; erasing
	// again changes nothing.
	Erase(ctx context.Context, conv string, seqs, unquote []uint64) error
}

// EraseRow is Erase of one row: the one copy of what erasing leaves.
func EraseRow(m *protocol.Message) {
	m.Deleted, m.Body = true, tombstone
}

// UnquoteRow is Erase's removal of m's quote snippet. It reports whether
// m had a quote.
func UnquoteRow(m *protocol.Message) bool {
	if m.Quote == nil {
		return false
	}
	q := *m.Quote
	q.Snippet, q.Deleted = "", true
	m.Quote = &q
	return true
}
