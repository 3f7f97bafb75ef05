package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// reply returns a plain message of sender quoting quoted.
func reply(conv string, seq uint64, sender string, quoted *protocol.Message) *protocol.Message {
	m := msg(conv, seq, sender)
	m.ReplyTo = quoted.Seq
	m.Quote = &protocol.Quote{Seq: quoted.Seq, Sender: quoted.Sender, Snippet: protocol.Snippet(quoted.Body, quoted.Kind)}
	return m
}

// threadReply returns a plain message of sender in the thread under root.
func threadReply(conv string, seq uint64, sender string, root uint64) *protocol.Message {
	m := msg(conv, seq, sender)
	m.Thread = root
	return m
}

// testReplyFields checks that every field of the envelope a row keeps
// comes back as appended, and that a re-append with another of them is a
// conflict.
func testReplyFields(t *testing.T, s history.Store) {
	const c = "replies"
	m1 := msg(c, 1, "u1")
	r := reply(c, 2, "u2", m1)
	r.Mentions = []string{"u1", protocol.MentionAll}
	deleted := reply(c, 3, "u3", m1)
	deleted.Quote = &protocol.Quote{Seq: 1, Deleted: true}
	inThread := threadReply(c, 4, "u1", 1)
	inThread.ReplyTo, inThread.Quote = 2, &protocol.Quote{Seq: 2, Sender: "u2", Kind: "", Snippet: "m2 ünïcødé \"q\""}
	inThread.Mentions = []string{"u2"}
	all := []*protocol.Message{m1, r, deleted, inThread}
	mustAppend(t, s, all...)
	want := clones(all)
	want[0].ThreadCount, want[0].ThreadLastSeq = 1, 4
	got, more := after(t, s, c, 0, 10)
	if more {
		t.Fatal("more after every row")
	}
	samePage(t, "After(0)", want, got)
	back, _ := before(t, s, c, 0, 10)
	samePage(t, "Before(0)", want, back)

	// The same rows again: nothing changes, no conflict.
	mustAppend(t, s, clones(all)...)
	got, _ = after(t, s, c, 0, 10)
	samePage(t, "After(0) after a re-append", want, got)

	for name, change := range map[string]func(m *protocol.Message){
		"reply_to": func(m *protocol.Message) { m.ReplyTo, m.Quote = 0, nil },
		"quote":    func(m *protocol.Message) { m.Quote.Snippet = "other" },
		"mentions": func(m *protocol.Message) { m.Mentions = []string{"u1"} },
		"thread":   func(m *protocol.Message) { m.Thread = 1 },
	} {
		m := clones([]*protocol.Message{r})[0]
		m.Quote = &protocol.Quote{Seq: r.Quote.Seq, Sender: r.Quote.Sender, Snippet: r.Quote.Snippet}
		change(m)
		if err := s.Append(context.Background(), []*protocol.Message{m}); err == nil {
			t.Errorf("re-append with another %s: no error, want ErrConflict", name)
		}
	}
}

// testThreads checks the counts a root carries: appended together or
// apart, again, out of order, with deleted replies, and what is not a
// root.
func testThreads(t *testing.T, s history.Store) {
	type batches = [][]*protocol.Message
	root := func(c string) *protocol.Message { return msg(c, 1, "u1") }
	del := func(c string, seq, ref uint64) *protocol.Message {
		return event(c, seq, "u2", protocol.KindDelete, ref, tombstone)
	}
	cases := []struct {
		name        string
		rows        func(c string) batches
		count, last uint64 // of seq 1
		replies     []uint64
	}{
		{"none", func(c string) batches { return batches{{root(c)}} }, 0, 0, nil},
		{"apart", func(c string) batches {
			return batches{{root(c)}, {threadReply(c, 3, "u2", 1)}, {msg(c, 4, "u3")}, {threadReply(c, 5, "u1", 1)}}
		}, 2, 5, []uint64{3, 5}},
		{"one batch", func(c string) batches {
			return batches{{root(c), threadReply(c, 2, "u2", 1), threadReply(c, 3, "u3", 1), msg(c, 4, "u2")}}
		}, 2, 3, []uint64{2, 3}},
		{"reply before its root in one batch", func(c string) batches {
			return batches{{threadReply(c, 2, "u2", 1), root(c)}}
		}, 1, 2, []uint64{2}},
		{"re-appended", func(c string) batches {
			return batches{{root(c), threadReply(c, 2, "u2", 1)}, {threadReply(c, 3, "u2", 1)},
				{threadReply(c, 2, "u2", 1), threadReply(c, 3, "u2", 1)}, {root(c)}}
		}, 2, 3, []uint64{2, 3}},
		{"deleted reply still counts", func(c string) batches {
			return batches{{root(c)}, {threadReply(c, 2, "u2", 1)}, {del(c, 3, 2)}}
		}, 1, 2, []uint64{2}},
		{"deleted root keeps its thread", func(c string) batches {
			return batches{{root(c)}, {threadReply(c, 2, "u2", 1)}, {del(c, 3, 1)}, {threadReply(c, 4, "u2", 1)}}
		}, 2, 4, []uint64{2, 4}},
		{"reply to a thread reply counts nowhere", func(c string) batches {
			return batches{{root(c), threadReply(c, 2, "u2", 1)}, {threadReply(c, 3, "u2", 2)}}
		}, 1, 2, []uint64{2}},
		{"root not stored", func(c string) batches {
			return batches{{threadReply(c, 2, "u2", 1)}}
		}, 0, 0, []uint64{2}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fmt.Sprintf("threads-%d", i)
			for _, b := range tc.rows(c) {
				mustAppend(t, s, b...)
			}
			r := row(t, s, c, 1)
			if r == nil {
				if tc.count != 0 || tc.name != "root not stored" {
					t.Fatal("root missing")
				}
			} else if r.ThreadCount != tc.count || r.ThreadLastSeq != tc.last {
				t.Errorf("root thread_count/thread_last_seq %d/%d, want %d/%d", r.ThreadCount, r.ThreadLastSeq, tc.count, tc.last)
			}
			got, more, err := s.ThreadAfter(context.Background(), c, 1, 0, 100)
			if err != nil || more {
				t.Fatalf("ThreadAfter: more %v, %v", more, err)
			}
			if fmt.Sprint(seqs(got)) != fmt.Sprint(nonNil(tc.replies)) {
				t.Errorf("thread replies %v, want %v", seqs(got), tc.replies)
			}
			back, _, err := s.ThreadBefore(context.Background(), c, 1, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			samePage(t, "ThreadBefore(0)", got, back)
		})
	}
}

func nonNil(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

// testThreadPages walks a long thread interleaved with other messages and
// another thread, across buckets, forwards and backwards, with edits and
// deletes applied to its replies.
func testThreadPages(t *testing.T, s history.Store) {
	ctx := context.Background()
	const c = "thread-pages"
	var all, want, other []*protocol.Message
	all = append(all, msg(c, 1, "u1"), msg(c, 2, "u2"))
	for seq := uint64(3); seq < 3+5*BucketSize; seq++ {
		switch seq % 3 {
		case 0:
			all = append(all, threadReply(c, seq, "u2", 1))
			want = append(want, all[len(all)-1])
		case 1:
			all = append(all, threadReply(c, seq, "u1", 2))
			other = append(other, all[len(all)-1])
		default:
			all = append(all, msg(c, seq, "u3"))
		}
	}
	mustAppend(t, s, all[:len(all)/2]...)
	mustAppend(t, s, all[len(all)/2:]...)
	// A moderator deletes one reply, its sender edits another.
	n := uint64(3 + 5*BucketSize)
	mustAppend(t, s, event(c, n, "u1", protocol.KindDelete, want[1].Seq, tombstone),
		event(c, n+1, "u2", protocol.KindEdit, want[2].Seq, editBody(n+1)))
	want = clones(want)
	want[1].Deleted, want[1].Body, want[1].DeletedBy = true, []byte(tombstone), "u1"
	want[2].Body, want[2].EditSeq = []byte(editBody(n+1)), n+1

	for _, limit := range []int{1, 3, 7, 100} {
		var got []*protocol.Message
		var from uint64
		for {
			page, more, err := s.ThreadAfter(ctx, c, 1, from, limit)
			if err != nil {
				t.Fatal(err)
			}
			checkPage(t, page, more, limit)
			got = append(got, page...)
			if !more {
				break
			}
			from = page[len(page)-1].Seq
		}
		samePage(t, fmt.Sprintf("ThreadAfter walk, limit %d", limit), want, got)
		got = nil
		var to uint64
		for {
			page, more, err := s.ThreadBefore(ctx, c, 1, to, limit)
			if err != nil {
				t.Fatal(err)
			}
			checkPage(t, page, more, limit)
			got = append(clones(page), got...)
			if !more {
				break
			}
			to = page[0].Seq
		}
		samePage(t, fmt.Sprintf("ThreadBefore walk, limit %d", limit), want, got)
	}
	if r := row(t, s, c, 2); r.ThreadCount != uint64(len(other)) || r.ThreadLastSeq != other[len(other)-1].Seq {
		t.Errorf("second root counts %d/%d, want %d/%d", r.ThreadCount, r.ThreadLastSeq, len(other), other[len(other)-1].Seq)
	}
	if page, more, err := s.ThreadAfter(ctx, c, 1, want[len(want)-1].Seq, 10); err != nil || more || len(page) != 0 {
		t.Errorf("ThreadAfter past the last reply: %v more %v %v", seqs(page), more, err)
	}
	if page, _, err := s.ThreadAfter(ctx, c, 99, 0, 10); err != nil || len(page) != 0 {
		t.Errorf("ThreadAfter of no thread: %v %v", seqs(page), err)
	}
}
