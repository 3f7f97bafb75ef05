// Package search is Natter's full-text search: the Index interface, with
// an embedded Bleve backend (search/bleveindex) and an OpenSearch one
// (search/opensearch), both passing search/searchtest; the Indexer, which
// keeps an Index from the CHAT stream through a durable consumer; and the
// search API (chat.api.search.query) the gateways call, over NATS.
//
// The index holds the plain messages of every conversation with their
// latest text. It knows nothing of members: the caller names the
// conversations a query may match (the gateway, from the user's
// membership at query time).
package search

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Doc is one indexed message: a plain message (protocol.KindMessage) with
// its edits applied.
type Doc struct {
	Conv   string
	Seq    uint64
	Sender string
	TS     string
	// Text is the body's text (protocol.BodyText), "" when it has none:
	// such a message is indexed all the same, so an edit that gives it
	// text finds it.
	Text string
	// EditSeq is the seq of the latest edit applied, 0 for none.
	EditSeq uint64
	// ExpiresAt is a disappearing message's expires_at (RFC 3339), ""
	// for one that lasts. Search never returns it from then on, and
	// Expire removes it.
	ExpiresAt string
}

// Order is d's place in the order of Search, newest first: see OrderKey.
func (d *Doc) Order() string { return OrderKey(d.TS, d.Seq, d.Conv) }

// Key names one message of the index.
type Key struct {
	Conv string
	Seq  uint64
}

// Key returns d's key.
func (d *Doc) Key() Key { return Key{Conv: d.Conv, Seq: d.Seq} }

// ID is the key as one string, "<conv>:<seq>": a backend's document id.
func (k Key) ID() string { return k.Conv + ":" + strconv.FormatUint(k.Seq, 10) }

// OrderKey is a message's place in the order search pages follow, newest
// first: descending OrderKey. Seqs alone do not order messages of
// different conversations once they are in different partition streams
// (each stream counts its own seqs), so the key is the stored time (ts,
// as Unix nanoseconds in 16 hex digits), then the seq (16 hex digits),
// then the conversation, which makes it unique. Within one conversation
// of one gateway clock this is the seq order. A ts that does not parse
// counts as time 0.
func OrderKey(ts string, seq uint64, conv string) string {
	var n uint64
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil && t.UnixNano() > 0 {
		n = uint64(t.UnixNano())
	}
	b := make([]byte, 0, 32+len(conv))
	b = appendHex16(b, n)
	b = appendHex16(b, seq)
	return string(append(b, conv...))
}

// appendHex16 appends v as 16 lower-case hex digits, which sort as the
// numbers do.
func appendHex16(b []byte, v uint64) []byte {
	const hex = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, hex[(v>>uint(i))&15])
	}
	return b
}

// Query asks for the messages matching Text, newest first.
type Query struct {
	// Text is what to look for: every word of it must match a word of the
	// message (case folded), in any order.
	Text string
	// Convs are the conversations to search; none matches nothing.
	Convs []string
	// Cursor, from a previous Page, continues after its last hit.
	Cursor string
	// Limit is the most hits returned; DefaultLimit when ≤ 0, at most
	// MaxLimit.
	Limit int
}

// Paging bounds of Search.
const (
	DefaultLimit = 20
	MaxLimit     = 100
	// FragmentBytes is about how long a highlight fragment is.
	FragmentBytes = 160
)

// Hit is a matching message.
type Hit struct {
	Conv   string
	Seq    uint64
	Sender string
	TS     string
	// Highlights are fragments of the text as HTML: the matched words in
	// <mark>…</mark>, the rest escaped. At least one when the text
	// matched.
	Highlights []string
}

// Page is one page of hits, newest first (descending OrderKey). Cursor,
// when not empty, continues with older hits: it is the OrderKey of the
// page's last hit.
type Page struct {
	Hits   []Hit
	Cursor string
}

// Index is a full-text index of messages. Implementations: bleveindex
// (embedded, the default) and opensearch. Both pass search/searchtest.
type Index interface {
	// Write stores put (replacing a stored Doc of the same key) and
	// removes del (a key not stored is no error), as one commit: when it
	// returns nil, all of it survives a crash.
	Write(ctx context.Context, put []Doc, del []Key) error
	// Get returns the stored Doc of k, or ErrNotFound.
	Get(ctx context.Context, k Key) (*Doc, error)
	// Search returns one page of the messages of q.Convs matching q.Text,
	// newest first, leaving out those whose ExpiresAt has come (whether
	// or not Expire removed them yet). An empty Text or Convs matches
	// nothing; a bad cursor is ErrBadCursor.
	Search(ctx context.Context, q Query) (Page, error)
	// Expire removes the Docs whose ExpiresAt is at or before now and
	// returns how many it removed.
	Expire(ctx context.Context, now time.Time) (int, error)
	// Close releases the index.
	Close() error
}

// Limit clamps a requested page size to the paging rule.
func Limit(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return min(n, MaxLimit)
}

// ParseCursor checks a cursor: "" (the first page) or the OrderKey a
// page continues below. Anything else is ErrBadCursor.
func ParseCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	if len(c) <= 32 || strings.Trim(c[:32], "0123456789abcdef") != "" || !protocol.ValidID(c[32:]) {
		return "", ErrBadCursor
	}
	return c, nil
}

// ParseSeqCursor is ParseCursor of an index made before OrderKey (see
// bleveindex): the cursor is the seq a page continues below, 0 for none.
func ParseSeqCursor(c string) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(c, 10, 64)
	if err != nil || v == 0 {
		return 0, ErrBadCursor
	}
	return v, nil
}

// SeqCursor is the cursor of an index made before OrderKey continuing
// below seq.
func SeqCursor(seq uint64) string { return strconv.FormatUint(seq, 10) }
