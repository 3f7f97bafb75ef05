package bleveindex

import (
	"context"
	"path/filepath"
	"testing"

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
