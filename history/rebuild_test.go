package history_test

import (
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// Wipe the embedded store, rebuild it from the stream: it answers as
// before, and a second rebuild changes nothing.
func TestRebuild(t *testing.T) {
	e := newEnv(t)
	convs := []string{"c", "d", "e"}
	var last uint64
	for i := range 30 {
		conv := convs[i%len(convs)]
		seq := e.say(conv, itoa(uint64(i)))[0]
		if i%4 == 3 {
			seq = e.publish(conv, envelope("u1", protocol.KindEdit, seq, "edited"))
		}
		if i%7 == 6 {
			seq = e.publish(conv, envelope("u1", protocol.KindDelete, seq-1, ""))
		}
		last = seq
	}
	e.publish("c", protocol.Envelope{Sender: "u1"}) // not an envelope: skipped
	w := run(t, history.NewWriter(history.WriterConfig{}, e.js, e.store))
	e.waitFloor(last + 1)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	answers := func() map[string][]string {
		out := map[string][]string{}
		for _, conv := range convs {
			rows, _, err := e.store.After(ctxT(t), conv, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			fwd, back := pages(t, e.reader(), conv, 7)
			out[conv+" store"], out[conv+" after"], out[conv+" before"] = texts(rows), fwd, back
		}
		return out
	}
	want := answers()

	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(e.dir); err != nil {
		t.Fatal(err)
	}
	e.store = e.open()
	if rows, _, _ := e.store.After(ctxT(t), "c", 0, 10); len(rows) != 0 {
		t.Fatal("the wiped store is not empty")
	}
	for range 2 {
		st, err := history.Rebuild(ctxT(t), e.js, e.store, 8)
		if err != nil {
			t.Fatal(err)
		}
		if st.First != 1 || st.Last != last+1 || st.Read != int(last+1) || st.Skipped != 1 || st.Appended != int(last) {
			t.Fatalf("stats %+v, want first 1, last %d, read %d, 1 skipped", st, last+1, last+1)
		}
		got := answers()
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Fatalf("%s after the rebuild:\n%v\nwant\n%v", k, got[k], v)
			}
		}
	}
}

// A store that holds another stream's rows is not rebuilt over.
func TestRebuildConflict(t *testing.T) {
	e := newEnv(t)
	e.say("c", "a", "b")
	if err := e.store.Append(ctxT(t), []*protocol.Message{row("c", 2, envelope("u7", "", 0, "old"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := history.Rebuild(ctxT(t), e.js, e.store, 0); !errors.Is(err, history.ErrConflict) {
		t.Fatalf("Rebuild = %v, want ErrConflict", err)
	}
}
