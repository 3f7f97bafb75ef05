package protocol

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzEnvelope feeds arbitrary stored messages to DecodeEnvelope, as any
// internal service publishing to chat.msg.* could. Rejections must be
// ErrBadEnvelope; an accepted envelope must become a push frame that is
// valid JSON and carries sender, client_id, ts, kind, ref, prev and body
// exactly.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"sender":"svc-x","client_id":"1","body":{"text":"hi"}}`,
		`{"sender":"u1","client_id":"e1","kind":"edit","ref":4,"body":{"text":"fixed"}}`,
		`{"sender":"u1","client_id":"r","kind":"reaction","ref":1,"ts":"2026-01-01T00:00:00Z","body":{"emoji":"\ud83d\ude00"}}`,
		`{"sender":"u1","client_id":"we\"ird<&>","body":{"t":"\u2028\u0000 <script>"}}`,
		`{"sender":"u1","client_id":"1","body":  {"a":[1,2,{"b":null}]}  }`,
		`{"sender":"u1","client_id":"1","ts":"\n\t\u0001","body":{}}`,
		`{"sender":"a.b","client_id":"1","body":{}}`,
		`{"sender":"u1","client_id":"1","body":"hi"}`,
		`{"sender":"u1","client_id":"1","kind":"poll","ref":1,"body":{}}`,
		`{"sender":"u1","sender":"u2","client_id":"1","body":{}}`,
		"{\"sender\":\"u1\",\"client_id\":\"1\",\"body\":{\"t\":\"\xff\"}}",
		`hello`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("DecodeEnvelope error %v is not ErrBadEnvelope", err)
			}
			return
		}
		m := e.Message("c-1", 42, "2026-01-01T00:00:00Z")
		m.Prev = 41
		frame := AppendMessageFrame(nil, m)
		if !json.Valid(frame) {
			t.Fatalf("envelope %q makes the invalid frame %q", data, frame)
		}
		var got Message
		if err := json.Unmarshal(frame, &got); err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		if got.Type != TypeMessage || got.Conv != "c-1" || got.Seq != 42 || got.Prev != 41 {
			t.Fatalf("frame %q: type/conv/seq = %q %q %d", frame, got.Type, got.Conv, got.Seq)
		}
		if got.Sender != e.Sender || got.ClientID != e.ClientID || got.TS != m.TS || got.Kind != e.Kind || got.Ref != e.Ref {
			t.Fatalf("frame %q does not round-trip %+v: got %+v", frame, e, got)
		}
		if string(got.Body) != string(e.Body) {
			t.Fatalf("body %q came back as %q", e.Body, got.Body)
		}
	})
}
