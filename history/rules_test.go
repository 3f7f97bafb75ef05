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
		{"delete by another", target, ev(protocol.KindDelete, 11, "u2", 10), false, `{"text":"hi"}`, 0, false},
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
