package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/natter-chat/natter/protocol"
)

// TestMessagesPageBytes checks that sync and history pages carry each
// message as the bytes encoding/json wrote for it before pages were
// encoded by hand: edits, tombstones, reactions, prev, HTML characters,
// control characters and bodies with whitespace included.
func TestMessagesPageBytes(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice")
	bodies := []string{
		`{"text":"<b>fish & chips</b>"}`,
		` { "text" : "spaced out" , "n" : [ 1, 2 ] } `,
		`{"text":"\u2028 line\nbreaks\t\"quoted\" \\ \u0001"}`,
		`{"emoji":"😀"}`,
	}
	var want []*protocol.Message
	for seq := uint64(1); seq <= 12; seq++ {
		m := &protocol.Message{Conv: "g1", Seq: seq, Sender: "alice", ClientID: fmt.Sprintf("c<%d>&\"", seq),
			TS: "2026-12-02T10:00:00.5Z", Body: json.RawMessage(bodies[seq%4]), Prev: seq - 1}
		switch seq % 4 {
		case 1:
			m.EditSeq = seq + 20
		case 2:
			m.Deleted, m.Body = true, json.RawMessage(`{}`)
		case 3:
			m.Kind, m.Ref = protocol.KindReaction, seq-1
		}
		h.msgs.put(m)
		want = append(want, m)
	}
	alice := h.dial("alice")
	items := func(r *protocol.Request) []json.RawMessage {
		t.Helper()
		raw, err := alice.Request(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Messages []json.RawMessage `json:"messages"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return f.Messages
	}
	check := func(how string, got []json.RawMessage, want []*protocol.Message) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages, want %d", how, len(got), len(want))
		}
		for i, m := range want {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(m); err != nil {
				t.Fatal(err)
			}
			if exp := bytes.TrimSuffix(b.Bytes(), []byte("\n")); !bytes.Equal(got[i], exp) {
				t.Fatalf("%s: message %d is\n%s\nwant\n%s", how, m.Seq, got[i], exp)
			}
		}
	}
	check("sync", items(req(protocol.TypeSync, func(r *protocol.Request) { r.Conv, r.Limit = "g1", 100 })), want)
	check("history", items(req(protocol.TypeHistory, func(r *protocol.Request) { r.Conv, r.Limit = "g1", 5 })), want[7:])
}

// BenchmarkMessagesPage encodes a sync page of 500 messages into its
// frame: by=append is protocol.AppendMessage (what pages do), by=json the
// json.Encoder it replaced.
func BenchmarkMessagesPage(b *testing.B) {
	msgs := make([]*protocol.Message, protocol.MaxLimit)
	for i := range msgs {
		msgs[i] = &protocol.Message{Conv: "g_AbCdEfGhIjKlMnOpQrStUv", Seq: uint64(1000 + i), Sender: "alice-0123456789",
			ClientID: "5f0c8a6e-3b1d-4c55-9a51-2b7d1f0e9c11", TS: "2026-11-27T01:39:17.753960963Z",
			Body: json.RawMessage(`{"text":"the quick brown fox jumps over the lazy dog, twice: the quick brown fox"}`), Prev: uint64(999 + i)}
	}
	head := []byte(`{"type":"messages","id":"r1","conv":"g_AbCdEfGhIjKlMnOpQrStUv","messages":[`)
	for _, by := range []string{"append", "json"} {
		b.Run("by="+by, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				p := newPage(protocol.MaxPageBytes, len(head), 20)
				for _, m := range msgs {
					if by == "append" {
						p.addMessage(m)
					} else if _, err := p.add(m); err != nil {
						b.Fatal(err)
					}
				}
				n = len(p.frame(head, false, []byte(`],"more":false}`)))
				p.release()
			}
			b.SetBytes(int64(n))
		})
	}
}
