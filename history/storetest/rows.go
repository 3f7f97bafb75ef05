package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// testRows checks Rows (history.RowsGetter), the batched read of the
// originals of a page's quotes: the rows asked for, ascending, as stored
// (a deletion applied), those not stored left out, across buckets and
// conversations.
func testRows(t *testing.T, s history.Store) {
	g, ok := s.(history.RowsGetter)
	if !ok {
		t.Fatal("the store does not read rows by seq (history.RowsGetter)")
	}
	const c = "rows"
	var all []*protocol.Message
	for seq := uint64(1); seq <= 6; seq++ {
		all = append(all, msg(c, seq, "u1"))
	}
	far := msg(c, 100_000, "u2") // another bucket on Cassandra
	mustAppend(t, s, append(all, far, msg("rows-other", 3, "u3"))...)
	mustAppend(t, s, event(c, 100_001, "u1", protocol.KindDelete, 3, `{}`))
	got, err := g.Rows(context.Background(), c, []uint64{1, 3, 9, 100_000, 100_002})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs(got), []uint64{1, 3, 100_000}) {
		t.Fatalf("Rows = %v, want 1, 3, 100000", seqs(got))
	}
	if got[0].Deleted || !got[1].Deleted || got[1].Sender != "u1" || got[2].Sender != "u2" {
		t.Fatalf("Rows: %+v %+v %+v, want 3 deleted", got[0], got[1], got[2])
	}
	if none, err := g.Rows(context.Background(), c, nil); err != nil || len(none) != 0 {
		t.Fatalf("Rows(none) = %v, %v", none, err)
	}
}
