package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestAppendMessageFrameIsJSON(t *testing.T) {
	m := &Message{Conv: "c1", Seq: 43, Sender: "u1", ClientID: `we"ird\id<&>`, TS: "2026-01-01T00:00:00Z", Kind: KindEdit, Ref: 7, Body: json.RawMessage(`{"text":"héllo \u2028"}`)}
	frame := AppendMessageFrame(nil, m)
	var got Message
	if err := json.Unmarshal(frame, &got); err != nil {
		t.Fatalf("frame %s is not JSON: %v", frame, err)
	}
	if got.Type != TypeMessage || got.ClientID != m.ClientID || got.Seq != 43 || got.Ref != 7 || got.Kind != KindEdit {
		t.Fatalf("round trip = %+v", got)
	}
	if string(got.Body) != string(m.Body) {
		t.Fatalf("body = %s", got.Body)
	}
}

// TestAppendMessageFramePrev checks that prev is always in the frame, 0
// included: the first item of a conversation says so explicitly.
func TestAppendMessageFramePrev(t *testing.T) {
	for _, prev := range []uint64{0, 1, 1 << 40} {
		m := &Message{Conv: "c1", Seq: prev + 1, Sender: "u1", ClientID: "x", TS: "t", Prev: prev, Body: json.RawMessage(`{}`)}
		frame := AppendMessageFrame(nil, m)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(frame, &raw); err != nil {
			t.Fatalf("frame %s: %v", frame, err)
		}
		var got uint64
		if err := json.Unmarshal(raw["prev"], &got); err != nil || got != prev {
			t.Fatalf("frame %s: prev = %s, want %d", frame, raw["prev"], prev)
		}
		// A page item (json.Marshal) carries it the same way.
		enc, _ := json.Marshal(m)
		if !strings.Contains(string(enc), fmt.Sprintf(`"prev":%d`, prev)) {
			t.Fatalf("marshalled item %s lacks prev %d", enc, prev)
		}
	}
}

func TestAppendStringControlChars(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\there", "nl\nx", "\x00\x1f", "quote\"back\\slash", "ünï"} {
		var back string
		enc := AppendString(nil, s)
		if err := json.Unmarshal(enc, &back); err != nil || back != s {
			t.Errorf("AppendString(%q) = %s, decodes to %q, %v", s, enc, back, err)
		}
	}
}

func TestDecodeEnvelope(t *testing.T) {
	big := `{"t":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"service message", `{"sender":"svc-x","client_id":"1","body":{"text":"hi"}}`, true},
		{"edit", `{"sender":"u1","client_id":"e1","kind":"edit","ref":4,"body":{"text":"fixed"}}`, true},
		{"edit without ref", `{"sender":"u1","client_id":"e1","kind":"edit","body":{}}`, false},
		{"unknown kind", `{"sender":"u1","client_id":"e1","kind":"poll","ref":1,"body":{}}`, false},
		{"ref on plain", `{"sender":"u1","client_id":"e1","ref":3,"body":{}}`, false},
		{"no sender", `{"client_id":"1","body":{}}`, false},
		{"bad sender", `{"sender":"a.b","client_id":"1","body":{}}`, false},
		{"no client id", `{"sender":"u1","body":{}}`, false},
		{"body string", `{"sender":"u1","client_id":"1","body":"hi"}`, false},
		{"no body", `{"sender":"u1","client_id":"1"}`, false},
		{"body too big", `{"sender":"u1","client_id":"1","body":` + big + `}`, false},
		{"not json", `hello`, false},
		{"not utf8", "{\"sender\":\"u1\",\"client_id\":\"1\",\"body\":{\"t\":\"\xff\"}}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEnvelope([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("err %v is not ErrBadEnvelope", err)
			}
		})
	}
}
