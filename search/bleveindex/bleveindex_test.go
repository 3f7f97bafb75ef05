package bleveindex

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/mapping"

	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/search"
	"github.com/natter-chat/natter/search/searchtest"
)

func TestConformance(t *testing.T) {
	searchtest.Run(t, func(t testing.TB) search.Index {
		x, err := New(Config{Dir: filepath.Join(t.TempDir(), "search")})
		if err != nil {
			t.Fatal(err)
		}
		return x
	})
}

// What a Write committed is there after the index is closed and opened
// again.
func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "search")
	x, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := x.Write(ctx, []search.Doc{{Conv: "c1", Seq: 3, Sender: "a", TS: "t", Text: "kept words"}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if x, err = New(Config{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	p, err := x.Search(ctx, search.Query{Text: "kept", Convs: []string{"c1"}})
	if err != nil || len(p.Hits) != 1 || p.Hits[0].Seq != 3 {
		t.Fatalf("after reopen: %+v, %v", p, err)
	}
}

// legacyMapping is the mapping of an index made before fKey: the seq
// indexed (the cursor's range) and, withOrder, fOrder (the sort); without
// it (an index made before fOrder too) the seq has doc values (its sort).
func legacyMapping(t *testing.T, withOrder bool) *mapping.IndexMappingImpl {
	t.Helper()
	m, err := indexMapping()
	if err != nil {
		t.Fatal(err)
	}
	im := m.(*mapping.IndexMappingImpl)
	delete(im.DefaultMapping.Properties, fKey)
	seq := bleve.NewNumericFieldMapping()
	seq.IncludeInAll, seq.DocValues = false, !withOrder
	im.DefaultMapping.Properties[fSeq].Fields = []*mapping.FieldMapping{seq}
	if withOrder {
		order := bleve.NewKeywordFieldMapping()
		order.Store, order.IncludeTermVectors, order.IncludeInAll, order.SkipFreqNorm = false, false, false, true
		im.DefaultMapping.AddFieldMappingsAt(fOrder, order)
	}
	return im
}

// An index made before fKey (its mapping has none) sorts by the seq and
// pages with seq cursors, as it did: newest first within a stream.
func TestLegacyIndex(t *testing.T) {
	for _, withOrder := range []bool{true, false} {
		x, err := create(filepath.Join(t.TempDir(), "search"), legacyMapping(t, withOrder))
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		if want := map[bool]string{true: fOrder, false: fSeq}[withOrder]; x.sort != want || !x.legacy {
			t.Fatalf("sorts by %q (legacy %v), want %q", x.sort, x.legacy, want)
		}
		ctx := context.Background()
		var docs []search.Doc
		for _, s := range []uint64{5, 300, 17, 4096, 2} {
			docs = append(docs, search.Doc{Conv: "c1", Seq: s, Sender: "a", TS: "t", Text: "same words"})
		}
		if err := x.Write(ctx, docs, nil); err != nil {
			t.Fatal(err)
		}
		var got []uint64
		p, err := x.Search(ctx, search.Query{Text: "words", Convs: []string{"c1"}, Limit: 3})
		for _, h := range p.Hits {
			got = append(got, h.Seq)
		}
		if err != nil || !slices.Equal(got, []uint64{4096, 300, 17}) || p.Cursor != "17" {
			t.Fatalf("hits %v cursor %q (%v), want [4096 300 17] cursor 17", got, p.Cursor, err)
		}
		p, err = x.Search(ctx, search.Query{Text: "words", Convs: []string{"c1"}, Limit: 3, Cursor: p.Cursor})
		got = got[:0]
		for _, h := range p.Hits {
			got = append(got, h.Seq)
		}
		if err != nil || !slices.Equal(got, []uint64{5, 2}) || p.Cursor != "" {
			t.Fatalf("page 2: hits %v cursor %q (%v), want [5 2]", got, p.Cursor, err)
		}
		// Its mapping has no expiry fields: it keeps no disappearing
		// message (which would never expire there).
		d := search.Doc{Conv: "c1", Seq: 5, Sender: "a", TS: "t", Text: "same words", ExpiresAt: "2999-01-01T00:00:00Z"}
		if err := x.Write(ctx, []search.Doc{d}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Get(ctx, d.Key()); !errors.Is(err, search.ErrNotFound) {
			t.Fatalf("a legacy index holds a disappearing message: %v", err)
		}
	}
}

func TestOrderKeySortsAsNumbers(t *testing.T) {
	seqs := []uint64{0, 1, 9, 10, 15, 16, 255, 256, 1 << 32, 1<<64 - 1}
	for i := 1; i < len(seqs); i++ {
		if a, b := orderKey(seqs[i-1]), orderKey(seqs[i]); len(a) != 16 || a >= b {
			t.Fatalf("orderKey(%d) = %q, orderKey(%d) = %q", seqs[i-1], a, seqs[i], b)
		}
	}
}

// Search looks at the newest hour, then day, first (searchWindows): pages
// are the same as without windows, across the windows' edges, with
// cursors, and with expired hits among them.
func TestWindows(t *testing.T) {
	x, err := New(Config{Dir: filepath.Join(t.TempDir(), "search")})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if !x.windows {
		t.Fatal("a new index has no hour field")
	}
	ctx := context.Background()
	now := time.Now()
	var docs []search.Doc
	var want []string
	// Every 7 minutes over 3 days, in two conversations of seqs of
	// their own; every 5th expired.
	for i := range 3 * 24 * 60 / 7 {
		conv := []string{"a1", "b2"}[i%2]
		d := search.Doc{Conv: conv, Seq: uint64(1000 - i), Sender: "u", TS: protocol.FormatTime(now.Add(-time.Duration(i) * 7 * time.Minute)), Text: "window words"}
		if i%5 == 3 {
			d.ExpiresAt = protocol.FormatTime(now.Add(-time.Second))
		} else {
			want = append(want, fmt.Sprintf("%s:%d", d.Conv, d.Seq))
		}
		docs = append(docs, d)
	}
	if err := x.Write(ctx, docs, nil); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{3, 20, 100} {
		var got []string
		cursor := ""
		for page := 0; ; page++ {
			if page > len(want) {
				t.Fatal("paging does not end")
			}
			p, err := x.Search(ctx, search.Query{Text: "words", Convs: []string{"a1", "b2"}, Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if p.Cursor != "" && len(p.Hits) != limit {
				t.Fatalf("limit %d: a page of %d with a cursor", limit, len(p.Hits))
			}
			for _, h := range p.Hits {
				got = append(got, fmt.Sprintf("%s:%d", h.Conv, h.Seq))
			}
			if cursor = p.Cursor; cursor == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: %d hits %v…, want %d %v…", limit, len(got), got[:min(8, len(got))], len(want), want[:8])
		}
	}
}
