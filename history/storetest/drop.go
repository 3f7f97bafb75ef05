package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// testDrop checks history.Dropper: dropped rows of every kind are gone
// from pages (across buckets), from Count and from the thread index,
// rows after them and other conversations' rows stay as they were,
// seqs never stored are skipped and dropping again changes nothing.
func testDrop(t *testing.T, s history.Store) {
	dr, ok := s.(history.Dropper)
	if !ok {
		t.Fatalf("%T does not implement history.Dropper", s)
	}
	const c, other = "drop", "drop-other"
	root := msg(c, 1, "u1")
	r1 := threadReply(c, 2, "u2", 1)
	edit := event(c, 3, "u1", protocol.KindEdit, 1, `{"text":"edited"}`)
	expiring := msg(c, BucketSize+1, "u2")
	expiring.ExpiresAt = protocol.FormatTime(time.Now().Add(time.Hour))
	react := event(c, BucketSize+2, "u1", protocol.KindReaction, BucketSize+1, `{"emoji":"x"}`)
	keptRoot := msg(c, BucketSize+3, "u1")
	keptReply := threadReply(c, 2*BucketSize+1, "u2", BucketSize+3)
	last := msg(c, 2*BucketSize+2, "u1")
	mustAppend(t, s, root, r1, edit, expiring, react, keptRoot, keptReply, last, msg(other, 1, "u1"), msg(other, 2, "u1"))
	ctx := context.Background()
	drop := []uint64{1, 2, 3, BucketSize + 1, BucketSize + 2, 99, 2*BucketSize + 9}
	for range 2 { // the second time changes nothing
		if err := dr.Drop(ctx, c, drop); err != nil {
			t.Fatal(err)
		}
		page, more := after(t, s, c, 0, 10)
		if got, want := seqs(page), []uint64{BucketSize + 3, 2*BucketSize + 1, 2*BucketSize + 2}; more || !slices.Equal(got, want) {
			t.Fatalf("After(0) after Drop = %v (more %v), want %v", got, more, want)
		}
		if page[0].ThreadCount != 1 || page[0].ThreadLastSeq != 2*BucketSize+1 {
			t.Fatalf("kept root's thread: count %d last %d, want 1, %d", page[0].ThreadCount, page[0].ThreadLastSeq, 2*BucketSize+1)
		}
		back, _ := before(t, s, c, 0, 10)
		if got := seqs(back); !slices.Equal(got, seqs(page)) {
			t.Fatalf("Before(0) after Drop = %v, want %v", got, seqs(page))
		}
		n, err := s.Count(ctx, c, 0)
		if err != nil || n != 3 {
			t.Fatalf("Count(0) after Drop = %d, %v; want 3 (the plain messages left)", n, err)
		}
		th, _, err := s.ThreadAfter(ctx, c, 1, 0, 10)
		if err != nil || len(th) != 0 {
			t.Fatalf("ThreadAfter(root 1) after Drop = %v, %v; want none", seqs(th), err)
		}
		th, _, err = s.ThreadAfter(ctx, c, BucketSize+3, 0, 10)
		if err != nil || !slices.Equal(seqs(th), []uint64{2*BucketSize + 1}) {
			t.Fatalf("ThreadAfter(kept root) after Drop = %v, %v", seqs(th), err)
		}
		if l, err := s.Last(ctx, c); err != nil || l != 2*BucketSize+2 {
			t.Fatalf("Last after Drop = %d, %v", l, err)
		}
		if page, _ := after(t, s, other, 0, 10); !slices.Equal(seqs(page), []uint64{1, 2}) {
			t.Fatalf("another conversation lost rows: %v", seqs(page))
		}
	}
	if err := dr.Drop(ctx, c, nil); err != nil {
		t.Fatalf("Drop(none): %v", err)
	}
}
