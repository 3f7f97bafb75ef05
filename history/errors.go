package history

import "errors"

var (
	// ErrNotFound is returned by Get for a seq that holds no message of the
	// conversation.
	ErrNotFound = errors.New("history: message not found")
	// ErrConflict is returned (wrapped) by Store.Append when a seq is
	// already stored with other content: the CHAT stream no longer matches
	// the store, e.g. the stream was restored from an old backup and hands
	// out seqs the store has seen. It is never retried: the writer stops.
	ErrConflict = errors.New("history: seq already stored with other content")
	// ErrWriterRunning is returned by Writer.Claim and Writer.Run when
	// another writer holds the lease of an embedded (single-writer) store.
	ErrWriterRunning = errors.New("history: another writer holds the history writer lease")
	// ErrLeaseLost is returned by Writer.Run when its lease was taken over
	// or could not be renewed within its TTL: another writer may be
	// appending, so this one stops.
	ErrLeaseLost = errors.New("history: history writer lease lost")
)
