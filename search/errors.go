package search

import "errors"

var (
	// ErrNotFound says the index holds no such message.
	ErrNotFound = errors.New("search: not found")
	// ErrBadCursor says a cursor was not one Search returned.
	ErrBadCursor = errors.New("search: bad cursor")
	// ErrBadQuery says a query is not one the API takes (too long, no
	// valid conversation).
	ErrBadQuery = errors.New("search: bad query")
	// ErrIndexerRunning is returned by Indexer.Claim and Indexer.Run when
	// another indexer holds the lease of an embedded (single-indexer)
	// index.
	ErrIndexerRunning = errors.New("search: another indexer holds the search indexer lease")
)
