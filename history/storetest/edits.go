package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// Bodies of the edit and delete events used by testEdits.
const (
	tombstone = `{}`
	thumbs    = `{"emoji":"👍"}`
)

func editBody(seq uint64) string { return fmt.Sprintf(`{"text":"edit %d"}`, seq) }

// testEdits checks how Append applies edits and deletes to their target,
// seq 1 of each case's conversation, sent by u1. Every appended row must
// also be stored as a row of its own, unchanged.
func testEdits(t *testing.T, s history.Store) {
	edit := func(c string, seq uint64, sender string, ref uint64) *protocol.Message {
		return event(c, seq, sender, protocol.KindEdit, ref, editBody(seq))
	}
	del := func(c string, seq uint64, sender string, ref uint64) *protocol.Message {
		return event(c, seq, sender, protocol.KindDelete, ref, tombstone)
	}
	react := func(c string, seq uint64, sender string, ref uint64) *protocol.Message {
		return event(c, seq, sender, protocol.KindReaction, ref, thumbs)
	}
	target := func(c string) *protocol.Message { return msg(c, 1, "u1") }
	type batches = [][]*protocol.Message
	cases := []struct {
		name    string
		rows    func(c string) batches
		body    string // "" keeps the original body
		editSeq uint64
		deleted bool
	}{
		{"edit by sender", func(c string) batches {
			return batches{{target(c)}, {edit(c, 2, "u1", 1)}}
		}, editBody(2), 2, false},
		{"edit by another sender ignored", func(c string) batches {
			return batches{{target(c)}, {edit(c, 2, "u2", 1)}}
		}, "", 0, false},
		{"edits in order", func(c string) batches {
			return batches{{target(c)}, {edit(c, 2, "u1", 1)}, {edit(c, 3, "u1", 1)}}
		}, editBody(3), 3, false},
		{"higher edit wins appended out of order", func(c string) batches {
			return batches{{target(c)}, {edit(c, 3, "u1", 1)}, {edit(c, 2, "u1", 1)}}
		}, editBody(3), 3, false},
		{"delete keeps edit seq", func(c string) batches {
			return batches{{target(c)}, {edit(c, 2, "u1", 1)}, {del(c, 3, "u1", 1)}}
		}, tombstone, 2, true},
		{"delete by another sender is a moderator's", func(c string) batches {
			return batches{{target(c)}, {del(c, 2, "u2", 1)}}
		}, tombstone, 0, true},
		{"edit after delete ignored", func(c string) batches {
			return batches{{target(c)}, {del(c, 2, "u1", 1)}, {edit(c, 3, "u1", 1)}}
		}, tombstone, 0, true},
		{"delete twice", func(c string) batches {
			return batches{{target(c)}, {del(c, 2, "u1", 1)}, {del(c, 3, "u1", 1)}}
		}, tombstone, 0, true},
		{"reaction changes nothing", func(c string) batches {
			return batches{{target(c)}, {react(c, 2, "u2", 1), react(c, 3, "u1", 1)}}
		}, "", 0, false},
		{"edit before its target is stored", func(c string) batches {
			return batches{{edit(c, 2, "u1", 1)}, {target(c)}}
		}, "", 0, false},
		{"edit of an edit row", func(c string) batches {
			return batches{{target(c)}, {edit(c, 2, "u1", 1)}, {edit(c, 3, "u1", 2)}}
		}, editBody(2), 2, false},
		{"edit and delete of a reaction row", func(c string) batches {
			return batches{{target(c)}, {react(c, 2, "u1", 1)}, {edit(c, 3, "u1", 2), del(c, 4, "u1", 2)}}
		}, "", 0, false},
		{"delete of an edit row", func(c string) batches {
			return batches{{target(c)}, {edit(c, 2, "u1", 1)}, {del(c, 3, "u1", 2)}}
		}, editBody(2), 2, false},
		{"edit aimed at another conversation", func(c string) batches {
			return batches{{target(c)}, {edit(c+"-other", 2, "u1", 1)}}
		}, "", 0, false},
		{"target and edits in one batch", func(c string) batches {
			return batches{{target(c), edit(c, 2, "u1", 1), edit(c, 3, "u1", 1)}}
		}, editBody(3), 3, false},
		{"edit before its target in one batch", func(c string) batches {
			// A batch behaves like its rows appended in seq order.
			return batches{{edit(c, 2, "u1", 1), target(c)}}
		}, editBody(2), 2, false},
		{"edit aimed at a later seq", func(c string) batches {
			// Seq 9 must keep its body: an edit never precedes its target.
			return batches{{target(c)}, {edit(c, 5, "u1", 9), msg(c, 9, "u1")}}
		}, "", 0, false},
		{"out of order in one batch", func(c string) batches {
			return batches{{target(c), edit(c, 3, "u1", 1), edit(c, 2, "u1", 1)}}
		}, editBody(3), 3, false},
		{"delete in one batch", func(c string) batches {
			return batches{{target(c), edit(c, 2, "u1", 1), del(c, 3, "u1", 1), edit(c, 4, "u1", 1)}}
		}, tombstone, 2, true},
		{"re-appended target keeps its edit", func(c string) batches {
			return batches{{target(c)}, {edit(c, 2, "u1", 1)}, {target(c)}, {target(c), edit(c, 2, "u1", 1)}}
		}, editBody(2), 2, false},
		{"re-appended target stays deleted", func(c string) batches {
			return batches{{target(c), edit(c, 2, "u1", 1)}, {del(c, 3, "u1", 1)}, {target(c), edit(c, 2, "u1", 1)}}
		}, tombstone, 2, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fmt.Sprintf("edits-%d", i)
			want := map[uint64]*protocol.Message{} // rows of c as appended first
			for _, b := range tc.rows(c) {
				for _, m := range b {
					if _, ok := want[m.Seq]; !ok && m.Conv == c {
						want[m.Seq] = clone(m)
					}
				}
				mustAppend(t, s, b...)
			}
			if tgt := want[1]; tgt != nil {
				if tc.body != "" {
					tgt.Body = []byte(tc.body)
				}
				tgt.EditSeq, tgt.Deleted = tc.editSeq, tc.deleted
				if tc.deleted && tc.name == "delete by another sender is a moderator's" {
					tgt.DeletedBy = "u2"
				}
			}
			got, more := after(t, s, c, 0, 100)
			if more || len(got) != len(want) {
				t.Fatalf("stored rows %v (more=%v), want %d rows", seqs(got), more, len(want))
			}
			for _, g := range got {
				if d := diff(want[g.Seq], g); d != "" {
					t.Errorf("seq %d: %s", g.Seq, d)
				}
			}
			// Before must return the rows as After does.
			back, _ := before(t, s, c, 0, 100)
			samePage(t, "Before(0)", got, back)
		})
	}
}

func testCount(t *testing.T, s history.Store) {
	var rows []*protocol.Message
	for seq := uint64(1); seq <= 40; seq++ {
		switch seq % 4 {
		case 0:
			rows = append(rows, event("c", seq, "u2", protocol.KindReaction, seq-1, thumbs))
		case 3:
			rows = append(rows, event("c", seq, "u1", protocol.KindEdit, seq-1, editBody(seq)))
		default:
			rows = append(rows, msg("c", seq*1, "u1"))
		}
	}
	rows = append(rows, event("c", 41, "u1", protocol.KindDelete, 2, tombstone))
	mustAppend(t, s, rows...)
	// Plain messages are seqs 1,2,5,6,9,10,...: two in every four. A
	// deleted message still counts: it was a message.
	cases := []struct{ after, want uint64 }{
		{0, 20}, {1, 19}, {2, 18}, {3, 18}, {4, 18}, {5, 17}, {37, 1}, {38, 0}, {41, 0}, {1 << 40, 0},
	}
	for _, tc := range cases {
		if n := count(t, s, "c", tc.after); n != tc.want {
			t.Errorf("Count(after %d) = %d, want %d", tc.after, n, tc.want)
		}
	}
	if n := count(t, s, "other", 0); n != 0 {
		t.Errorf("Count(other) = %d, want 0", n)
	}
}

func testLast(t *testing.T, s history.Store) {
	mustAppend(t, s, msg("a", 100, "u1"), msg("b", 50, "u1"))
	mustAppend(t, s, msg("a", 7, "u1")) // older, appended later
	mustAppend(t, s, event("b", 1<<35, "u1", protocol.KindReaction, 50, thumbs))
	cases := []struct {
		conv string
		want uint64
	}{{"a", 100}, {"b", 1 << 35}, {"c", 0}}
	for _, tc := range cases {
		if n := last(t, s, tc.conv); n != tc.want {
			t.Errorf("Last(%s) = %d, want %d", tc.conv, n, tc.want)
		}
	}
}

// testBigBody stores the largest body the gateway accepts, with bytes a JSON
// re-encoder would change (spacing, escapes, HTML characters).
func testBigBody(t *testing.T, s history.Store) {
	head, tail := `{ "text" : "`, `" ,"x":1e0 }`
	pad := protocol.MaxBodyBytes - len(head) - len(tail)
	var sb strings.Builder
	for sb.Len() < pad {
		sb.WriteString(`<a&b> \u00e9 \"q\" `[:min(19, pad-sb.Len())])
	}
	body := head + sb.String() + tail
	if len(body) != protocol.MaxBodyBytes {
		t.Fatalf("body is %d bytes", len(body))
	}
	m := msg("big", 9, "u1")
	m.Body = []byte(body)
	mustAppend(t, s, m, msg("big", 10, "u1"))
	got := row(t, s, "big", 9)
	if d := diff(clone(m), got); d != "" {
		t.Fatal(d)
	}
	// Edit the big body with another big body.
	e := event("big", 11, "u1", protocol.KindEdit, 9, strings.Replace(body, "text", "TEXT", 1))
	mustAppend(t, s, e)
	want := clone(m)
	want.Body, want.EditSeq = append([]byte(nil), e.Body...), 11
	if d := diff(want, row(t, s, "big", 9)); d != "" {
		t.Fatal(d)
	}
}

func testUnicode(t *testing.T, s history.Store) {
	bodies := []string{
		`{"text":"emoji 😀👍🏽👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵"}`,
		`{"text":"עברית ושלום","dir":"rtl"}`,
		`{"text":"مرحبا بالعالم"}`,
		`{"text":"日本語と中文和한국어"}`,
		`{"text":"combining é vs é, zero\u200bwidth"}`,
		"{\"text\":\"raw\ttab and \\u0000 escape\"}",
		`{"text":"\ud83d\ude00 escaped surrogate pair"}`,
	}
	var want []*protocol.Message
	for i, b := range bodies {
		m := msg("uni", uint64(i+1), "u1")
		m.Body = []byte(b)
		m.ClientID = "cid-ü-" + fmt.Sprint(i)
		mustAppend(t, s, m)
		want = append(want, clone(m))
	}
	got, _ := after(t, s, "uni", 0, 100)
	samePage(t, "unicode", want, got)
	got, _ = before(t, s, "uni", 0, 100)
	samePage(t, "unicode backwards", want, got)
}
