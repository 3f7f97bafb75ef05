// Package searchtest is the conformance suite every search.Index passes:
// the embedded Bleve index and OpenSearch run the same tests.
package searchtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/search"
)

// Opener returns a new, empty index for one test; the suite closes it.
// Each call must return an index of its own (a fresh directory, a fresh
// OpenSearch index name).
type Opener func(t testing.TB) search.Index

// Run runs the suite against the indexes open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, search.Index)
	}{
		{"MatchesWordsCaseFolded", testMatches},
		{"OnlyNamedConversations", testConvs},
		{"NewestFirstWithCursor", testPaging},
		{"OrderAcrossStreams", testOrderAcrossStreams},
		{"Expiry", testExpiry},
		{"HighlightsAreEscapedHTML", testHighlights},
		{"ReplaceAndDelete", testReplaceDelete},
		{"Get", testGet},
		{"EmptyAndBadQueries", testEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := open(t)
			t.Cleanup(func() { _ = x.Close() })
			tc.fn(t, x)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// base is the time of seq 0 of doc: a doc's ts is base plus seq seconds,
// so that ts and seq agree, as they do for the messages of one stream.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func doc(conv string, seq uint64, sender, text string) search.Doc {
	return search.Doc{Conv: conv, Seq: seq, Sender: sender, TS: base.Add(time.Duration(seq) * time.Second).Format(time.RFC3339Nano), Text: text}
}

func write(t *testing.T, x search.Index, put []search.Doc, del []search.Key) {
	t.Helper()
	if err := x.Write(ctx(t), put, del); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// seqs searches and returns the seqs of the hits of one page.
func seqs(t *testing.T, x search.Index, q search.Query) ([]uint64, search.Page) {
	t.Helper()
	p, err := x.Search(ctx(t), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	var s []uint64
	for _, h := range p.Hits {
		s = append(s, h.Seq)
	}
	return s, p
}

func want(t *testing.T, what string, got, want []uint64) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got seqs %v, want %v", what, got, want)
	}
}

func testMatches(t *testing.T, x search.Index) {
	write(t, x, []search.Doc{
		doc("c1", 1, "alice", "The quick brown fox"),
		doc("c1", 2, "bob", "a lazy dog"),
		doc("c1", 3, "alice", "QUICK thinking, Brown-eyed dog"),
		doc("c1", 4, "bob", "Grüße aus Köln"),
	}, nil)
	all := []string{"c1"}
	got, p := seqs(t, x, search.Query{Text: "quick", Convs: all})
	want(t, "quick", got, []uint64{3, 1})
	if p.Cursor != "" {
		t.Fatalf("cursor %q on the only page", p.Cursor)
	}
	h := p.Hits[1]
	if h.Conv != "c1" || h.Sender != "alice" || h.TS != "2026-01-01T00:00:01Z" {
		t.Fatalf("hit %+v", h)
	}
	got, _ = seqs(t, x, search.Query{Text: "brown DOG", Convs: all})
	want(t, "every word must match", got, []uint64{3})
	got, _ = seqs(t, x, search.Query{Text: "köln", Convs: all})
	want(t, "non-ASCII case folding", got, []uint64{4})
	got, _ = seqs(t, x, search.Query{Text: "the", Convs: all})
	want(t, "no stop words", got, []uint64{1})
	got, _ = seqs(t, x, search.Query{Text: "cat", Convs: all})
	want(t, "no match", got, nil)
}

func testConvs(t *testing.T, x search.Index) {
	write(t, x, []search.Doc{
		doc("c1", 1, "alice", "secret plan"),
		doc("c2", 2, "bob", "secret party"),
		doc("c3", 3, "carol", "secret sauce"),
		doc("c1x", 4, "dave", "secret code"),
	}, nil)
	got, _ := seqs(t, x, search.Query{Text: "secret", Convs: []string{"c1", "c3"}})
	want(t, "c1 and c3 only", got, []uint64{3, 1})
	got, _ = seqs(t, x, search.Query{Text: "secret", Convs: []string{"c2"}})
	want(t, "c2 only", got, []uint64{2})
	got, _ = seqs(t, x, search.Query{Text: "secret", Convs: []string{"c"}})
	want(t, "no prefix match of a conversation", got, nil)
}

func testPaging(t *testing.T, x search.Index) {
	var docs []search.Doc
	for i := uint64(1); i <= 25; i++ {
		text := "hello world"
		if i%5 == 0 {
			text = "goodbye"
		}
		docs = append(docs, doc(fmt.Sprintf("c%d", i%3), i*10, "alice", text))
	}
	write(t, x, docs, nil)
	convs := []string{"c0", "c1", "c2"}
	var all []uint64
	cursor := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("paging does not end")
		}
		got, p := seqs(t, x, search.Query{Text: "hello", Convs: convs, Cursor: cursor, Limit: 7})
		if len(got) > 7 {
			t.Fatalf("page of %d > limit 7", len(got))
		}
		all = append(all, got...)
		if p.Cursor == "" {
			break
		}
		if len(got) != 7 {
			t.Fatalf("a page of %d with a cursor", len(got))
		}
		cursor = p.Cursor
	}
	var exp []uint64
	for i := uint64(25); i >= 1; i-- {
		if i%5 != 0 {
			exp = append(exp, i*10)
		}
	}
	want(t, "all pages, newest first", all, exp)
	// Exactly a page's worth leaves no cursor.
	got, p := seqs(t, x, search.Query{Text: "goodbye", Convs: convs, Limit: 5})
	want(t, "goodbye", got, []uint64{250, 200, 150, 100, 50})
	if p.Cursor != "" {
		t.Fatalf("cursor %q after the last hit", p.Cursor)
	}
	// The default limit is search.DefaultLimit.
	got, _ = seqs(t, x, search.Query{Text: "hello", Convs: convs})
	if len(got) != search.DefaultLimit {
		t.Fatalf("default page of %d hits, want %d", len(got), search.DefaultLimit)
	}
}

// Conversations in different partition streams have seqs of their own,
// which do not order their messages against each other: a page is in the
// order they were stored (ts), and so is the cursor. Equal times and
// seqs in two conversations are two hits.
func testOrderAcrossStreams(t *testing.T, x search.Index) {
	at := func(conv string, seq uint64, sec int, nanos int) search.Doc {
		d := doc(conv, seq, "alice", "note")
		d.TS = base.Add(time.Duration(sec)*time.Second + time.Duration(nanos)).Format(time.RFC3339Nano)
		return d
	}
	write(t, x, []search.Doc{
		at("g1", 900, 10, 0), at("g1", 901, 30, 0), at("g1", 902, 50, 0), // stream A: high seqs
		at("d1", 3, 20, 0), at("d1", 4, 40, 0), at("d1", 5, 50, 0), // stream B: low seqs
		at("d2", 5, 50, 0),           // same ts and seq as d1's 5: a hit of its own
		at("d1", 6, 40, 500_000_000), // half a second after d1's 4
	}, nil)
	convs := []string{"g1", "d1", "d2"}
	exp := []string{"g1:902", "d2:5", "d1:5", "d1:6", "d1:4", "g1:901", "d1:3", "g1:900"}
	keys := func(p search.Page) []string {
		var out []string
		for _, h := range p.Hits {
			out = append(out, fmt.Sprintf("%s:%d", h.Conv, h.Seq))
		}
		return out
	}
	p, err := x.Search(ctx(t), search.Query{Text: "note", Convs: convs})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(p); !slices.Equal(got, exp) {
		t.Fatalf("one page: %v, want %v", got, exp)
	}
	for _, limit := range []int{1, 3} {
		var all []string
		cursor := ""
		for page := 0; ; page++ {
			if page > len(exp) {
				t.Fatalf("limit %d: paging does not end: %v", limit, all)
			}
			p, err := x.Search(ctx(t), search.Query{Text: "note", Convs: convs, Cursor: cursor, Limit: limit})
			if err != nil {
				t.Fatalf("limit %d, cursor %q: %v", limit, cursor, err)
			}
			all = append(all, keys(p)...)
			if p.Cursor == "" {
				break
			}
			cursor = p.Cursor
		}
		if !slices.Equal(all, exp) {
			t.Fatalf("pages of %d: %v, want %v", limit, all, exp)
		}
	}
}

// A disappearing message is found until its expires_at, however far off
// that is, and never from then on, whether or not Expire removed it yet;
// pages read on past expired ones; Expire removes exactly what expired.
func testExpiry(t *testing.T, x search.Index) {
	now := time.Now()
	at := func(seq uint64, exp time.Time) search.Doc {
		d := doc("c1", seq, "alice", "fleeting words")
		if !exp.IsZero() {
			d.ExpiresAt = exp.UTC().Format(time.RFC3339Nano)
		}
		return d
	}
	past, soon, far := now.Add(-time.Second), now.Add(time.Hour), now.Add(90*24*time.Hour)
	docs := []search.Doc{at(1, time.Time{}), at(2, past), at(3, past), at(4, past), at(5, far), at(6, soon), at(7, past)}
	write(t, x, docs, nil)
	all := []string{"c1"}
	got, _ := seqs(t, x, search.Query{Text: "fleeting", Convs: all})
	want(t, "expired ones left out", got, []uint64{6, 5, 1})
	var pages []uint64
	cursor := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("paging does not end")
		}
		got, p := seqs(t, x, search.Query{Text: "fleeting", Convs: all, Limit: 2, Cursor: cursor})
		if p.Cursor != "" && len(got) != 2 {
			t.Fatalf("page %d: %v, short of the limit with a cursor", page, got)
		}
		pages = append(pages, got...)
		if p.Cursor == "" {
			break
		}
		cursor = p.Cursor
	}
	want(t, "pages of 2 over expired ones", pages, []uint64{6, 5, 1})
	if d, err := x.Get(ctx(t), search.Key{Conv: "c1", Seq: 5}); err != nil || d.ExpiresAt != docs[4].ExpiresAt {
		t.Fatalf("Get of a disappearing message: %+v, %v; want expires_at %s", d, err, docs[4].ExpiresAt)
	}
	n, err := x.Expire(ctx(t), now)
	if err != nil || n != 4 {
		t.Fatalf("Expire(now) = %d, %v; want the 4 expired", n, err)
	}
	for _, seq := range []uint64{2, 3, 4, 7} {
		if _, err := x.Get(ctx(t), search.Key{Conv: "c1", Seq: seq}); !errors.Is(err, search.ErrNotFound) {
			t.Fatalf("Get of expired seq %d after Expire: %v", seq, err)
		}
	}
	if n, err := x.Expire(ctx(t), now); err != nil || n != 0 {
		t.Fatalf("Expire again = %d, %v; want 0", n, err)
	}
	if n, err := x.Expire(ctx(t), soon); err != nil || n != 1 {
		t.Fatalf("Expire(in an hour) = %d, %v; want 1", n, err)
	}
	got, _ = seqs(t, x, search.Query{Text: "fleeting", Convs: all})
	want(t, "after Expire(in an hour)", got, []uint64{5, 1})
}

func testHighlights(t *testing.T, x search.Index) {
	long := strings.Repeat("filler words here ", 30) + "the needle is here " + strings.Repeat("more filler ", 30)
	write(t, x, []search.Doc{
		doc("c1", 1, "alice", `<b>bold</b> & "needle" <script>x</script>`),
		doc("c1", 2, "alice", long),
	}, nil)
	_, p := seqs(t, x, search.Query{Text: "needle", Convs: []string{"c1"}})
	if len(p.Hits) != 2 {
		t.Fatalf("hits %+v", p.Hits)
	}
	for _, h := range p.Hits {
		if len(h.Highlights) == 0 {
			t.Fatalf("hit %d has no highlight", h.Seq)
		}
		hl := strings.Join(h.Highlights, " ")
		if !strings.Contains(hl, "<mark>needle</mark>") {
			t.Errorf("hit %d: highlight %q does not mark the match", h.Seq, hl)
		}
		rest := strings.ReplaceAll(strings.ReplaceAll(hl, "<mark>", ""), "</mark>", "")
		if strings.ContainsAny(rest, "<>") {
			t.Errorf("hit %d: highlight %q is not escaped", h.Seq, hl)
		}
		if h.Seq == 2 && len(hl) > 600 {
			t.Errorf("highlight of a long text is not a fragment: %d bytes", len(hl))
		}
	}
	if hl := p.Hits[1].Highlights[0]; !strings.Contains(hl, "&lt;b&gt;bold&lt;/b&gt;") || !strings.Contains(hl, "&amp;") {
		t.Errorf("highlight %q does not keep the escaped markup", hl)
	}
}

func testReplaceDelete(t *testing.T, x search.Index) {
	write(t, x, []search.Doc{doc("c1", 1, "alice", "original words"), doc("c1", 2, "alice", "other words")}, nil)
	edited := doc("c1", 1, "alice", "edited text")
	edited.EditSeq = 5
	write(t, x, []search.Doc{edited}, []search.Key{{Conv: "c1", Seq: 2}, {Conv: "c9", Seq: 99}})
	got, _ := seqs(t, x, search.Query{Text: "original", Convs: []string{"c1"}})
	want(t, "the old text after a replace", got, nil)
	got, _ = seqs(t, x, search.Query{Text: "edited", Convs: []string{"c1"}})
	want(t, "the new text", got, []uint64{1})
	got, _ = seqs(t, x, search.Query{Text: "words", Convs: []string{"c1"}})
	want(t, "after a delete", got, nil)
	// Deleting and writing again in one Write leaves the write.
	write(t, x, []search.Doc{doc("c1", 2, "alice", "back again")}, []search.Key{{Conv: "c1", Seq: 2}})
	got, _ = seqs(t, x, search.Query{Text: "back", Convs: []string{"c1"}})
	want(t, "put wins over a delete of the same Write", got, []uint64{2})
}

func testGet(t *testing.T, x search.Index) {
	d := doc("c1", 7, "alice", "hello there")
	d.EditSeq = 9
	write(t, x, []search.Doc{d, doc("c1", 8, "bob", "")}, nil)
	got, err := x.Get(ctx(t), search.Key{Conv: "c1", Seq: 7})
	if err != nil || *got != d {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, d)
	}
	got, err = x.Get(ctx(t), search.Key{Conv: "c1", Seq: 8})
	if err != nil || got.Sender != "bob" || got.Text != "" {
		t.Fatalf("Get of a message without text = %+v, %v", got, err)
	}
	if _, err := x.Get(ctx(t), search.Key{Conv: "c1", Seq: 70}); !errors.Is(err, search.ErrNotFound) {
		t.Fatalf("Get of a missing doc: %v, want ErrNotFound", err)
	}
}

func testEmpty(t *testing.T, x search.Index) {
	write(t, x, []search.Doc{doc("c1", 1, "alice", "something")}, nil)
	for _, q := range []search.Query{{Text: "", Convs: []string{"c1"}}, {Text: "something"}, {Text: "!!!", Convs: []string{"c1"}}} {
		got, p := seqs(t, x, q)
		if len(got) != 0 || p.Cursor != "" {
			t.Fatalf("Search(%+v) = %+v", q, p)
		}
	}
	if _, err := x.Search(ctx(t), search.Query{Text: "something", Convs: []string{"c1"}, Cursor: "x"}); !errors.Is(err, search.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}
