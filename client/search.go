package client

import (
	"context"

	"github.com/natter-chat/natter/protocol"
)

// SearchOptions narrow a search; the zero value searches every
// conversation of the caller, first page, the server's default limit.
type SearchOptions struct {
	// Conv limits the search to one conversation.
	Conv string
	// Cursor continues after a previous page (SearchResults.Cursor).
	Cursor string
	// Limit is the most hits (the server caps it at 100).
	Limit int
}

// Search returns the caller's messages matching query (every word must
// match), newest first, from the conversations they are a member of now.
// Each hit's highlights are HTML fragments: matched words in
// <mark>…</mark>, the rest escaped. A non-empty Cursor in the results
// fetches the next page.
func (c *Client) Search(ctx context.Context, query string, opts SearchOptions) (*protocol.SearchResults, error) {
	req := protocol.Request{Type: protocol.TypeSearch, Query: query, Conv: opts.Conv, Cursor: opts.Cursor, Limit: opts.Limit}
	var res protocol.SearchResults
	if err := c.call(ctx, req, protocol.TypeSearchResults, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
