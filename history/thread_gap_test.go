package history_test

import (
	"slices"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// A store that lacks thread replies below the writer's ack floor (lost,
// restored from an old backup, being rebuilt, a hole) while the stream
// still holds them: thread pages still return every reply, edits
// applied, as sync and history do (TestReaderFallsBackToStream).
func TestReaderThreadFallsBackToStream(t *testing.T) {
	e := newEnv(t)
	reply := func(text string) uint64 {
		env := envelope("u2", protocol.KindMessage, 0, text)
		env.Thread = 1
		return e.publish("c", env)
	}
	e.say("c", "root")                                         // 1
	reply("t1")                                                // 2
	e.say("c", "main")                                         // 3
	reply("t2")                                                // 4
	e.say("c", "more")                                         // 5
	reply("t3")                                                // 6
	reply("t4")                                                // 7
	e.publish("c", envelope("u2", protocol.KindEdit, 4, "T2")) // 8
	reply("t5")                                                // 9
	want := []string{"2:t1", "4:T2*", "6:t3", "7:t4", "9:t5"}

	cases := []struct {
		name  string
		store []uint64 // the seqs the store still has
	}{
		{"store lost", nil},
		{"store lacks the newest rows", []uint64{1, 2, 3, 4, 5}},
		{"store lacks replies in the middle", []uint64{1, 2, 3, 5, 8, 9}},
		{"store lacks the oldest rows", []uint64{5, 6, 7, 8, 9}},
		{"store complete", []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
	}
	all, _, err := mustStream(t, e).After(ctxT(t), "c", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	e.ackUpTo(9) // the floor says the store has everything
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
			for _, n := range []int{1, 2, 50} {
				fwd, back := threadPages(t, r, "c", 1, n)
				if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
					t.Fatalf("pages of %d:\nafter  %v\nbefore %v\nwant   %v", n, fwd, back, want)
				}
			}
		})
	}
}

// A writer that lags: replies it has not stored yet come from the
// stream, in the same page as the stored ones, whatever the page size.
func TestReaderThreadWriterLags(t *testing.T) {
	e := newEnv(t)
	reply := func(text string) uint64 {
		env := envelope("u2", protocol.KindMessage, 0, text)
		env.Thread = 1
		return e.publish("c", env)
	}
	e.say("c", "root") // 1
	reply("t1")        // 2
	reply("t2")        // 3
	w := run(t, history.NewWriter(history.WriterConfig{Batch: 1}, e.js, e.store))
	e.waitFloor(3)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	// The writer is stopped: these are in the stream only.
	e.say("c", "main")                                         // 4
	reply("t3")                                                // 5
	e.publish("c", envelope("u2", protocol.KindEdit, 2, "T1")) // 6
	reply("t4")                                                // 7
	want := []string{"2:T1*", "3:t2", "5:t3", "7:t4"}
	for _, n := range []int{1, 3, 50} {
		fwd, back := threadPages(t, e.reader(), "c", 1, n)
		if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
			t.Fatalf("pages of %d:\nafter  %v\nbefore %v\nwant   %v", n, fwd, back, want)
		}
	}
}
