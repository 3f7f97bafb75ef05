package history_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// pages reads conv through r forwards (After) and backwards (Before) in
// pages of size n and returns both as seq:text lists. Every item's Prev
// must be the seq of the item before it, 0 for the first, whichever page
// it came on.
func pages(t *testing.T, r *history.Reader, conv string, n int) (fwd, back []string) {
	t.Helper()
	var after uint64
	var all []*protocol.Message
	for {
		page, more, err := r.After(ctxT(t), conv, after, n)
		if err != nil {
			t.Fatal(err)
		}
		fwd = append(fwd, texts(page)...)
		all = append(all, page...)
		if !more {
			break
		}
		after = page[len(page)-1].Seq
	}
	checkChain(t, "after", all)
	var before uint64
	all = nil
	for {
		page, more, err := r.Before(ctxT(t), conv, before, n)
		if err != nil {
			t.Fatal(err)
		}
		back = append(texts(page), back...)
		all = append(slices.Clone(page), all...)
		if !more {
			break
		}
		before = page[0].Seq
	}
	checkChain(t, "before", all)
	return fwd, back
}

// checkChain fails unless every item's Prev is the seq of the one before.
func checkChain(t *testing.T, how string, all []*protocol.Message) {
	t.Helper()
	var prev uint64
	for _, m := range all {
		if m.Prev != prev {
			t.Fatalf("%s: item %d has prev %d, want %d", how, m.Seq, m.Prev, prev)
		}
		prev = m.Seq
	}
}

// Every page carries Prev, wherever it starts (a seq of the conversation,
// of another one, of an invalid envelope, past the end) and wherever its
// rows come from: the store, the stream, or both. Invalid envelopes are
// no items, so no Prev names them.
func TestReaderPrev(t *testing.T) {
	e := newEnv(t)
	a := e.say("c", "a")[0]                                         // 1
	e.say("other", "x")                                             // 2
	bad, err := e.js.Publish(ctxT(t), schema.Msg("c"), []byte("{")) // 3: not an item
	if err != nil {
		t.Fatal(err)
	}
	b := e.say("c", "b")[0]                                       // 4
	e.publish("c", envelope("u1", protocol.KindEdit, a, "A"))     // 5
	e.say("other", "y")                                           // 6
	e.publish("c", envelope("u2", protocol.KindReaction, b, "+")) // 7
	last := e.say("c", "c")[0]                                    // 8
	items := []uint64{a, b, 5, 7, last}
	if bad.Sequence != 3 || last != 8 {
		t.Fatalf("seqs %d %d: the test assumes a fresh stream", bad.Sequence, last)
	}
	// newest returns the newest item below seq, 0 if none.
	newest := func(seq uint64) uint64 {
		var p uint64
		for _, s := range items {
			if s < seq {
				p = s
			}
		}
		return p
	}
	check := func(t *testing.T, r *history.Reader) {
		for seq := uint64(1); seq <= last+1; seq++ {
			// The fan-out's prev of an item at seq (fanout.PrevOfer).
			if got, err := r.PrevOf(ctxT(t), "c", seq); err != nil || got != newest(seq) {
				t.Fatalf("PrevOf(%d) = %d, %v, want %d", seq, got, err, newest(seq))
			}
		}
		for from := uint64(0); from <= last+1; from++ {
			for _, n := range []int{1, 2, 50} {
				page, _, err := r.After(ctxT(t), "c", from, n)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range page {
					if want := newest(m.Seq); m.Prev != want {
						t.Fatalf("After(%d, %d): item %d has prev %d, want %d", from, n, m.Seq, m.Prev, want)
					}
				}
				page, _, err = r.Before(ctxT(t), "c", from, n)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range page {
					if want := newest(m.Seq); m.Prev != want {
						t.Fatalf("Before(%d, %d): item %d has prev %d, want %d", from, n, m.Seq, m.Prev, want)
					}
				}
			}
		}
	}
	t.Run("stream", func(t *testing.T) { check(t, e.reader()) })
	w := run(t, history.NewWriter(history.WriterConfig{Batch: 3}, e.js, e.store))
	e.waitFloor(6)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	t.Run("store and stream", func(t *testing.T) { check(t, e.reader()) })
}

// The Reader merges the store (rows up to the ack floor, edits applied by
// the store) with the stream (rows above it, edits applied in the page):
// every split of the same history reads the same.
func TestReaderMergesStoreAndStream(t *testing.T) {
	e := newEnv(t)
	seqs := e.say("c", "a", "b", "c", "d")
	e.say("other", "x")
	e.publish("c", envelope("u1", protocol.KindEdit, seqs[0], "A"))    // 6
	e.publish("c", envelope("u2", protocol.KindEdit, seqs[1], "nope")) // 7: not the sender
	e.say("c", "e")                                                    // 8
	e.publish("c", envelope("u1", protocol.KindDelete, seqs[2], ""))   // 9
	e.publish("c", envelope("u1", protocol.KindEdit, seqs[0], "AA"))   // 10
	e.publish("c", envelope("u3", protocol.KindReaction, seqs[3], "+1"))
	want := []string{"1:AA*", "2:b", "3:x", "4:d", "6:A", "7:nope", "8:e", "9:", "10:AA", "11:+1"}

	r := e.reader()
	for _, n := range []int{1, 3, 50} {
		fwd, back := pages(t, r, "c", n)
		if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
			t.Fatalf("all from the stream, pages of %d:\nafter  %v\nbefore %v\nwant   %v", n, fwd, back, want)
		}
	}
	// Move the split: the writer stores up to each floor in turn.
	w := run(t, history.NewWriter(history.WriterConfig{Batch: 3}, e.js, e.store))
	e.waitFloor(11)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 4, 50} {
		fwd, back := pages(t, e.reader(), "c", n)
		if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
			t.Fatalf("all from the store, pages of %d:\nafter  %v\nbefore %v\nwant   %v", n, fwd, back, want)
		}
	}
	// Newer messages on top of the store: store rows and stream rows in
	// one page, an edit in the stream applied to a stored row.
	e.publish("c", envelope("u1", protocol.KindEdit, seqs[3], "D")) // 12
	e.say("c", "f")                                                 // 13
	want = []string{"1:AA*", "2:b", "3:x", "4:D*", "6:A", "7:nope", "8:e", "9:", "10:AA", "11:+1", "12:D", "13:f"}
	for _, n := range []int{1, 5, 50} {
		fwd, back := pages(t, e.reader(), "c", n)
		if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
			t.Fatalf("store and stream, pages of %d:\nafter  %v\nbefore %v\nwant   %v", n, fwd, back, want)
		}
	}
	// Get applies what the tail changed of its row, like pages.
	if got, err := e.reader().Get(ctxT(t), "c", 4); err != nil || string(got.Body) != `{"text":"D"}` || got.EditSeq != 12 {
		t.Fatalf("Get(4) = %+v, %v, want the edit of 12 applied", got, err)
	}
	if got, err := e.reader().Get(ctxT(t), "c", 3); err != nil || !got.Deleted {
		t.Fatalf("Get(3) = %+v, %v, want deleted", got, err)
	}
}

// A store that lacks rows below the writer's ack floor (lost, restored
// from an old backup, being rebuilt) while the stream still holds them:
// sync and scroll-back still return them, edits applied.
func TestReaderFallsBackToStream(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 12 {
		s := string(rune('a' + i))
		seq := e.say("c", s)[0]
		want = append(want, strings.Join([]string{itoa(seq), s}, ":"))
	}
	e.publish("c", envelope("u1", protocol.KindEdit, 2, "B")) // 13
	want[1] = "2:B*"
	want = append(want, "13:B")

	cases := []struct {
		name  string
		store []uint64 // the seqs the store still has
	}{
		{"store lost", nil},
		{"store lacks the newest rows", []uint64{1, 2, 3, 4, 5}},
		{"store lacks rows in the middle", []uint64{1, 2, 3, 9, 10, 11, 12, 13}},
		{"store lacks the oldest rows", []uint64{8, 9, 10, 11, 12, 13}},
	}
	all, _, err := mustStream(t, e).After(ctxT(t), "c", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	e.ackUpTo(13) // the floor says the store has everything
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.dir = t.TempDir()
			e.store = e.open()
			var rows []*protocol.Message
			for _, m := range all {
				if slices.Contains(tc.store, m.Seq) {
					rows = append(rows, m)
				}
			}
			if err := e.store.Append(ctxT(t), rows); err != nil {
				t.Fatal(err)
			}
			r := e.reader()
			for _, n := range []int{1, 4, 50} {
				fwd, back := pages(t, r, "c", n)
				if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
					t.Fatalf("pages of %d:\nafter  %v\nbefore %v\nwant   %v", n, fwd, back, want)
				}
			}
		})
	}
}

func mustStream(t *testing.T, e *env) *history.Stream {
	t.Helper()
	st, err := history.NewStream(ctxT(t), e.js)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
