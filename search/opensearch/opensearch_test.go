package opensearch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/natter-chat/natter/search"
	"github.com/natter-chat/natter/search/searchtest"
)

// url is the OpenSearch under test: deploy/opensearch/with.sh sets
// NATTER_OPENSEARCH_URL (go tool task test runs every Go test under it).
// Without it the suite fails under CI and is skipped, loudly, elsewhere.
func serverURL(t *testing.T) string {
	u := os.Getenv("NATTER_OPENSEARCH_URL")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("NATTER_OPENSEARCH_URL is not set: CI runs the OpenSearch suite under deploy/opensearch/with.sh (go tool task test)")
		}
		t.Skip("SKIPPED: no OpenSearch; run deploy/opensearch/with.sh go test ./search/opensearch/ (needs Java 17 and Maven)")
	}
	return u
}

func TestConformance(t *testing.T) {
	u := serverURL(t)
	searchtest.Run(t, func(t testing.TB) search.Index {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		x, err := New(ctx, Config{URL: u, Index: "natter-test-" + hex.EncodeToString(b)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := x.Delete(ctx); err != nil {
				t.Errorf("delete index: %v", err)
			}
		})
		return x
	})
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"a &lt;&#x2F;b&gt; <mark>x&amp;y</mark> &quot;q&quot;": "a &lt;/b&gt; <mark>x&amp;y</mark> &#34;q&#34;",
		"plain":      "plain",
		"<mark>open": "&lt;mark&gt;open",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// An index made before okey (its strict mapping lacks the field) gets it
// when opened: writes of today's documents are accepted and sort by it,
// and the documents it had, without okey, come after them.
func TestIndexWithoutOrderKey(t *testing.T) {
	u := serverURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	x := &Index{base: u, index: "natter-test-" + hex.EncodeToString(b), client: &http.Client{Timeout: 30 * time.Second}}
	defer func() { _ = x.Delete(context.Background()) }()
	old := map[string]any{"mappings": map[string]any{"dynamic": "strict", "properties": map[string]any{
		"conv": map[string]any{"type": "keyword"}, "seq": map[string]any{"type": "long"},
		"sender": map[string]any{"type": "keyword"}, "ts": map[string]any{"type": "keyword", "index": false},
		"text": map[string]any{"type": "text", "analyzer": "standard"}, "edit_seq": map[string]any{"type": "long", "index": false},
	}}}
	if st, body, err := x.do(ctx, http.MethodPut, "/"+x.index, old); err != nil || st != http.StatusOK {
		t.Fatalf("create old index: %d %s %v", st, body, err)
	}
	if st, body, err := x.do(ctx, http.MethodPost, "/"+x.index+"/_doc/c1:1?refresh=true", map[string]any{
		"conv": "c1", "seq": 1, "sender": "a", "ts": "2026-01-01T00:00:01Z", "text": "old words", "edit_seq": 0}); err != nil || st >= 300 {
		t.Fatalf("write old doc: %d %s %v", st, body, err)
	}
	y, err := New(ctx, Config{URL: u, Index: x.index})
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Write(ctx, []search.Doc{{Conv: "c2", Seq: 1, Sender: "b", TS: "2026-01-01T00:00:02Z", Text: "new words"}}, nil); err != nil {
		t.Fatalf("write after the mapping update: %v", err)
	}
	p, err := y.Search(ctx, search.Query{Text: "words", Convs: []string{"c1", "c2"}})
	if err != nil || len(p.Hits) != 2 || p.Hits[0].Conv != "c2" || p.Hits[1].Conv != "c1" {
		t.Fatalf("search: %+v, %v", p, err)
	}
}
