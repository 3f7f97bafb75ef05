package protocol

import "encoding/json"

// Full-text search (docs/protocol.md, "Search").
const (
	// TypeSearch asks for the asker's messages matching a query, newest
	// first, from the conversations they are a member of.
	TypeSearch = "search"
	// TypeSearchResults answers search.
	TypeSearchResults = "search_results"
	// DefaultSearchLimit and MaxSearchLimit bound one page of hits.
	DefaultSearchLimit = 20
	MaxSearchLimit     = 100
	// MaxQueryBytes bounds a search query.
	MaxQueryBytes = 256
)

// SearchHit is one matching message: where it is and the matching parts
// of its text. Each highlight is HTML: the matched words wrapped in
// <mark>…</mark>, everything else escaped (&lt; &gt; &amp; &quot; &#39;).
type SearchHit struct {
	Conv       string   `json:"conv"`
	Seq        uint64   `json:"seq"`
	Sender     string   `json:"sender"`
	TS         string   `json:"ts"`
	Highlights []string `json:"highlights"`
}

// SearchResults answers search: hits newest first (descending seq) and,
// when more may follow, the cursor to pass for the next page.
type SearchResults struct {
	Type   string      `json:"type"`
	ID     string      `json:"id,omitempty"`
	Hits   []SearchHit `json:"hits"`
	Cursor string      `json:"cursor,omitempty"`
}

// BodyText returns the body's top-level "text" string, "" when it has
// none: what search indexes of a message.
func BodyText(body json.RawMessage) string {
	t, _ := bodyText(body)
	return t
}
