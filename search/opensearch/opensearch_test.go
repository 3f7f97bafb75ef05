package opensearch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
