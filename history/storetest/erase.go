package storetest

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// testErase checks history.Eraser: every row of the erased sender (a
// message, its edit, a reaction) reads back as a tombstone with no trace
// of a body, a quote of an erased message loses its snippet, others' rows
// stay, erasing again changes nothing, seqs never stored are skipped,
// and appending the stream's copies again (a rebuild) is no conflict
// and brings nothing back.
func testErase(t *testing.T, s history.Store) {
	er, ok := s.(history.Eraser)
	if !ok {
		t.Fatalf("%T does not implement history.Eraser", s)
	}
	const c = "erase"
	m1 := msg(c, 1, "gone")
	m1.Body = []byte(`{"text":"secret one"}`)
	m2 := msg(c, 2, "stays")
	edit := event(c, 3, "gone", protocol.KindEdit, 1, `{"text":"secret edit"}`)
	react := event(c, 4, "gone", protocol.KindReaction, 2, `{"emoji":"secret-emoji"}`)
	quoting := reply(c, 5, "stays", m1)
	quoting.Quote.Snippet = "secret one"
	m6 := msg(c, 6, "gone")
	m6.Body = []byte(`{"text":"secret six"}`)
	all := []*protocol.Message{m1, m2, edit, react, quoting, m6}
	mustAppend(t, s, all...)
	ctx := context.Background()
	for range 2 { // the second time changes nothing
		if err := er.Erase(ctx, c, []uint64{1, 3, 4, 6, 99}, []uint64{5, 2, 98}); err != nil {
			t.Fatal(err)
		}
		check := func(when string) {
			t.Helper()
			page, _ := after(t, s, c, 0, 10)
			if got := seqs(page); len(got) != 6 {
				t.Fatalf("%s: rows %v, want 6 (an erased row stays, as a tombstone)", when, got)
			}
			for _, m := range page {
				if strings.Contains(string(m.Body), "secret") || m.Quote != nil && strings.Contains(m.Quote.Snippet, "secret") {
					t.Fatalf("%s: row %d still holds a secret: %s %+v", when, m.Seq, m.Body, m.Quote)
				}
				switch m.Seq {
				case 1, 3, 4, 6:
					if !m.Deleted || !bytes.Equal(m.Body, []byte(`{}`)) || m.Sender != "gone" {
						t.Fatalf("%s: erased row %d = %+v", when, m.Seq, m)
					}
				case 2:
					if m.Deleted || string(m.Body) != `{"text":"m2"}` {
						t.Fatalf("%s: row 2 of another sender changed: %+v", when, m)
					}
				case 5:
					if m.Deleted || string(m.Body) != `{"text":"m5"}` || m.Quote == nil || !m.Quote.Deleted || m.Quote.Sender != "gone" || m.Quote.Seq != 1 {
						t.Fatalf("%s: quoting row 5 = %+v quote %+v", when, m, m.Quote)
					}
				}
			}
			if n := count(t, s, c, 0); n != 4 {
				t.Fatalf("%s: count %d, want 4 plain messages (tombstones count)", when, n)
			}
		}
		check("erased")
		// A rebuild appends the stream's copies again.
		mustAppend(t, s, all...)
		check("appended again")
	}
	if r := row(t, s, c, 99); r != nil {
		t.Fatalf("erasing a seq never stored made a row: %+v", r)
	}
}
