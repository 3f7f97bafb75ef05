package history_test

import (
	"slices"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// threadPages reads the thread under root through r forwards and
// backwards in pages of n, as seq:text lists.
func threadPages(t *testing.T, r *history.Reader, conv string, root uint64, n int) (fwd, back []string) {
	t.Helper()
	var after uint64
	for {
		page, more, err := r.ThreadAfter(ctxT(t), conv, root, after, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > n || (more && len(page) == 0) {
			t.Fatalf("ThreadAfter page of %d (more %v), limit %d", len(page), more, n)
		}
		fwd = append(fwd, texts(page)...)
		if !more {
			break
		}
		after = page[len(page)-1].Seq
	}
	var before uint64
	for {
		page, more, err := r.ThreadBefore(ctxT(t), conv, root, before, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > n || (more && len(page) == 0) {
			t.Fatalf("ThreadBefore page of %d (more %v), limit %d", len(page), more, n)
		}
		back = append(texts(page), back...)
		if !more {
			break
		}
		before = page[0].Seq
	}
	return fwd, back
}

// rootCounts reads root's thread counts through a conversation page and
// through Get, failing if they differ.
func rootCounts(t *testing.T, r *history.Reader, conv string, root uint64) (uint64, uint64) {
	t.Helper()
	page, _, err := r.After(ctxT(t), conv, root-1, 1)
	if err != nil || len(page) != 1 {
		t.Fatalf("After(%d): %v %v", root-1, page, err)
	}
	got, err := r.Get(ctxT(t), conv, root)
	if err != nil {
		t.Fatal(err)
	}
	if got.ThreadCount != page[0].ThreadCount || got.ThreadLastSeq != page[0].ThreadLastSeq {
		t.Fatalf("Get's counts %d/%d, the page's %d/%d", got.ThreadCount, got.ThreadLastSeq, page[0].ThreadCount, page[0].ThreadLastSeq)
	}
	return got.ThreadCount, got.ThreadLastSeq
}

func TestReaderThreads(t *testing.T) {
	e := newEnv(t)
	threadEnv := func(text string, root uint64) protocol.Envelope {
		env := envelope("u2", protocol.KindMessage, 0, text)
		env.Thread = root
		return env
	}
	root := e.say("c", "root")[0]                               // 1
	e.publish("c", threadEnv("r1", root))                       // 2
	e.say("c", "main")                                          // 3
	e.say("other", "x")                                         // 4
	r2 := e.publish("c", threadEnv("r2", root))                 // 5
	e.publish("c", threadEnv("elsewhere", 3))                   // 6: another thread
	e.publish("c", envelope("u2", protocol.KindEdit, r2, "R2")) // 7
	e.publish("c", threadEnv("r3", root))                       // 8
	want := []string{"2:r1", "5:R2*", "8:r3"}

	check := func(how string, want []string, count, last uint64) {
		t.Helper()
		r := e.reader()
		for _, n := range []int{1, 2, 50} {
			fwd, back := threadPages(t, r, "c", root, n)
			if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
				t.Fatalf("%s, pages of %d:\nafter  %v\nbefore %v\nwant   %v", how, n, fwd, back, want)
			}
		}
		if c, l := rootCounts(t, r, "c", root); c != count || l != last {
			t.Fatalf("%s: root counts %d/%d, want %d/%d", how, c, l, count, last)
		}
	}
	check("all from the stream", want, 3, 8)

	w := run(t, history.NewWriter(history.WriterConfig{Batch: 2}, e.js, e.store))
	e.waitFloor(8)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	check("all from the store", want, 3, 8)

	// Newer replies on top of the store, a deletion of a stored one.
	e.publish("c", threadEnv("r4", root))                      // 9
	e.publish("c", envelope("u1", protocol.KindDelete, 2, "")) // 10: a moderator's
	check("store and stream", []string{"2:x", "5:R2*", "8:r3", "9:r4"}, 4, 9)
	got, err := e.reader().Get(ctxT(t), "c", 2)
	if err != nil || !got.Deleted || got.DeletedBy != "u1" {
		t.Fatalf("Get(2) = %+v, %v, want deleted by u1", got, err)
	}
	if fwd, _ := threadPages(t, e.reader(), "c", 3, 10); !slices.Equal(fwd, []string{"6:elsewhere"}) {
		t.Fatalf("thread under 3: %v", fwd)
	}
	if fwd, _ := threadPages(t, e.reader(), "c", 99, 10); len(fwd) != 0 {
		t.Fatalf("thread under 99: %v", fwd)
	}
}
