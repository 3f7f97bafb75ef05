package history

import (
	"testing"

	"github.com/natter-chat/natter/protocol"
)

func TestApply(t *testing.T) {
	target := func() *protocol.Message {
		return &protocol.Message{Conv: "c", Seq: 10, Sender: "u1", Body: []byte(`{"text":"hi"}`)}
	}
	ev := func(kind string, seq uint64, sender string, ref uint64) *protocol.Message {
		return &protocol.Message{Conv: "c", Seq: seq, Sender: sender, Kind: kind, Ref: ref, Body: []byte(`{"text":"new"}`)}
	}
	cases := []struct {
		name    string
		t       func() *protocol.Message
		ev      *protocol.Message
		changed bool
		body    string
		editSeq uint64
		deleted bool
	}{
		{"edit by sender", target, ev(protocol.KindEdit, 11, "u1", 10), true, `{"text":"new"}`, 11, false},
		{"edit by another", target, ev(protocol.KindEdit, 11, "u2", 10), false, `{"text":"hi"}`, 0, false},
		{"delete by sender", target, ev(protocol.KindDelete, 11, "u1", 10), true, `{}`, 0, true},
		{"delete by another (a moderator)", target, ev(protocol.KindDelete, 11, "u2", 10), true, `{}`, 0, true},
		{"reaction", target, ev(protocol.KindReaction, 11, "u1", 10), false, `{"text":"hi"}`, 0, false},
		{"plain message", target, ev(protocol.KindMessage, 11, "u1", 10), false, `{"text":"hi"}`, 0, false},
		{"other ref", target, ev(protocol.KindEdit, 11, "u1", 9), false, `{"text":"hi"}`, 0, false},
		{"other conversation", target, &protocol.Message{Conv: "d", Seq: 11, Sender: "u1", Kind: protocol.KindEdit, Ref: 10}, false, `{"text":"hi"}`, 0, false},
		{"event before its target", func() *protocol.Message {
			m := target()
			m.Seq = 12
			return m
		}, ev(protocol.KindEdit, 11, "u1", 12), false, `{"text":"hi"}`, 0, false},
		{"older edit after a newer one", func() *protocol.Message {
			m := target()
			m.Body, m.EditSeq = []byte(`{"text":"newer"}`), 20
			return m
		}, ev(protocol.KindEdit, 15, "u1", 10), false, `{"text":"newer"}`, 20, false},
		{"delete keeps the edit seq", func() *protocol.Message {
			m := target()
			m.Body, m.EditSeq = []byte(`{"text":"edited"}`), 20
			return m
		}, ev(protocol.KindDelete, 21, "u1", 10), true, `{}`, 20, true},
		{"edit of a deleted message", func() *protocol.Message {
			m := target()
			m.Body, m.Deleted = []byte(`{}`), true
			return m
		}, ev(protocol.KindEdit, 21, "u1", 10), false, `{}`, 0, true},
		{"edit of a reaction", func() *protocol.Message {
			m := target()
			m.Kind, m.Ref = protocol.KindReaction, 3
			return m
		}, ev(protocol.KindEdit, 21, "u1", 10), false, `{"text":"hi"}`, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.t()
			if got := Apply(tg, tc.ev); got != tc.changed {
				t.Errorf("Apply = %v, want %v", got, tc.changed)
			}
			if string(tg.Body) != tc.body || tg.EditSeq != tc.editSeq || tg.Deleted != tc.deleted {
				t.Errorf("target body/edit_seq/deleted = %s/%d/%v, want %s/%d/%v",
					tg.Body, tg.EditSeq, tg.Deleted, tc.body, tc.editSeq, tc.deleted)
			}
			wantBy := ""
			if tc.changed && tc.deleted && tc.ev.Sender != tg.Sender {
				wantBy = tc.ev.Sender
			}
			if tg.DeletedBy != wantBy {
				t.Errorf("deleted_by %q, want %q", tg.DeletedBy, wantBy)
			}
		})
	}
}

func TestApplyThread(t *testing.T) {
	root := func() *protocol.Message {
		return &protocol.Message{Conv: "c", Seq: 10, Sender: "u1", Body: []byte(`{}`)}
	}
	reply := func(seq, thread uint64) *protocol.Message {
		return &protocol.Message{Conv: "c", Seq: seq, Sender: "u2", Thread: thread, Body: []byte(`{}`)}
	}
	cases := []struct {
		name        string
		t           func() *protocol.Message
		r           *protocol.Message
		changed     bool
		count, last uint64
	}{
		{"first reply", root, reply(11, 10), true, 1, 11},
		{"next reply", func() *protocol.Message { m := root(); m.ThreadCount, m.ThreadLastSeq = 2, 15; return m }, reply(16, 10), true, 3, 16},
		{"counted already", func() *protocol.Message { m := root(); m.ThreadCount, m.ThreadLastSeq = 2, 15; return m }, reply(15, 10), false, 2, 15},
		{"older than the last", func() *protocol.Message { m := root(); m.ThreadCount, m.ThreadLastSeq = 2, 15; return m }, reply(12, 10), false, 2, 15},
		{"other root", root, reply(11, 9), false, 0, 0},
		{"not a thread reply", root, reply(11, 0), false, 0, 0},
		{"reply before its root", root, reply(9, 10), false, 0, 0},
		{"root in a thread itself", func() *protocol.Message { m := root(); m.Thread = 3; return m }, reply(11, 10), false, 0, 0},
		{"root not a plain message", func() *protocol.Message { m := root(); m.Kind, m.Ref = protocol.KindReaction, 3; return m }, reply(11, 10), false, 0, 0},
		{"reply not a plain message", root, func() *protocol.Message { m := reply(11, 10); m.Kind, m.Ref = protocol.KindEdit, 10; return m }(), false, 0, 0},
		{"other conversation", root, func() *protocol.Message { m := reply(11, 10); m.Conv = "d"; return m }(), false, 0, 0},
		{"deleted root still counts", func() *protocol.Message { m := root(); m.Deleted = true; return m }, reply(11, 10), true, 1, 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.t()
			if got := ApplyThread(tg, tc.r); got != tc.changed {
				t.Errorf("ApplyThread = %v, want %v", got, tc.changed)
			}
			if tg.ThreadCount != tc.count || tg.ThreadLastSeq != tc.last {
				t.Errorf("thread_count/thread_last_seq %d/%d, want %d/%d", tg.ThreadCount, tg.ThreadLastSeq, tc.count, tc.last)
			}
		})
	}
}

func TestSame(t *testing.T) {
	stored := func() *protocol.Message {
		return &protocol.Message{Conv: "c", Seq: 5, Sender: "u1", ClientID: "k", TS: "2026-01-01T00:00:00Z", Body: []byte(`{"text":"hi"}`)}
	}
	cases := []struct {
		name   string
		stored func(*protocol.Message)
		offer  func(*protocol.Message)
		same   bool
	}{
		{"identical", nil, nil, true},
		{"other body", nil, func(m *protocol.Message) { m.Body = []byte(`{"text":"ho"}`) }, false},
		{"other sender", nil, func(m *protocol.Message) { m.Sender = "u2" }, false},
		{"other client id", nil, func(m *protocol.Message) { m.ClientID = "j" }, false},
		{"other timestamp", nil, func(m *protocol.Message) { m.TS = "2025-01-01T00:00:00Z" }, false},
		{"other kind", nil, func(m *protocol.Message) { m.Kind, m.Ref = protocol.KindReaction, 1 }, false},
		{"other ref", func(m *protocol.Message) { m.Kind, m.Ref = protocol.KindReaction, 1 },
			func(m *protocol.Message) { m.Kind, m.Ref = protocol.KindReaction, 2 }, false},
		{"other seq", nil, func(m *protocol.Message) { m.Seq = 6 }, false},
		{"edited, original body offered", func(m *protocol.Message) { m.Body, m.EditSeq = []byte(`{"text":"e"}`), 9 }, nil, true},
		{"deleted, original body offered", func(m *protocol.Message) { m.Body, m.Deleted = []byte(`{}`), true }, nil, true},
		{"edited, other sender offered", func(m *protocol.Message) { m.Body, m.EditSeq = []byte(`{"text":"e"}`), 9 },
			func(m *protocol.Message) { m.Sender = "u2" }, false},
		{"input edit seq ignored", nil, func(m *protocol.Message) { m.EditSeq = 3 }, true},
		{"other reply_to", nil, func(m *protocol.Message) { m.ReplyTo = 2 }, false},
		{"other thread", nil, func(m *protocol.Message) { m.Thread = 2 }, false},
		{"other quote", func(m *protocol.Message) { m.ReplyTo, m.Quote = 2, &protocol.Quote{Seq: 2, Sender: "u2", Snippet: "a"} },
			func(m *protocol.Message) { m.ReplyTo, m.Quote = 2, &protocol.Quote{Seq: 2, Sender: "u2", Snippet: "b"} }, false},
		{"same quote", func(m *protocol.Message) { m.ReplyTo, m.Quote = 2, &protocol.Quote{Seq: 2, Sender: "u2", Snippet: "a"} },
			func(m *protocol.Message) { m.ReplyTo, m.Quote = 2, &protocol.Quote{Seq: 2, Sender: "u2", Snippet: "a"} }, true},
		{"other mentions", nil, func(m *protocol.Message) { m.Mentions = []string{"u2"} }, false},
		{"thread counts and deleted_by ignored", func(m *protocol.Message) { m.ThreadCount, m.ThreadLastSeq, m.DeletedBy = 2, 9, "" }, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, m := stored(), stored()
			if tc.stored != nil {
				tc.stored(s)
			}
			if tc.offer != nil {
				tc.offer(m)
			}
			if got := Same(s, m); got != tc.same {
				t.Errorf("Same = %v, want %v", got, tc.same)
			}
		})
	}
}
