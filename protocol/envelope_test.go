package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

func TestEnvelopeReplyFieldsRoundTrip(t *testing.T) {
	m := &Message{Conv: "c", Seq: 9, Sender: "u1", ClientID: "x", TS: "t", ReplyTo: 4,
		Quote:  &Quote{Seq: 4, Sender: "u2", Snippet: "hello <there>"},
		Thread: 2, Mentions: []string{"u2", MentionAll}, Body: json.RawMessage(`{"text":"re"}`), Prev: 8}
	for name, frame := range map[string][]byte{"push": AppendMessageFrame(nil, m), "page": AppendMessage(nil, m)} {
		var got Message
		if err := json.Unmarshal(frame, &got); err != nil {
			t.Fatalf("%s: %s: %v", name, frame, err)
		}
		if got.ReplyTo != 4 || got.Quote == nil || *got.Quote != *m.Quote || got.Thread != 2 ||
			!slices.Equal(got.Mentions, m.Mentions) {
			t.Fatalf("%s: decoded %+v from %s", name, got, frame)
		}
	}
	env, err := DecodeEnvelope([]byte(`{"sender":"u1","client_id":"1","reply_to":4,"quote":{"seq":4,"sender":"u2","snippet":"hi"},"thread":2,"mentions":["u2"],"body":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if msg := env.Message("c", 5, "t"); msg.ReplyTo != 4 || msg.Quote.Sender != "u2" || msg.Thread != 2 || msg.Mentions[0] != "u2" {
		t.Fatalf("message from envelope: %+v", msg)
	}
}

func TestEnvelopeCheckIssue15Fields(t *testing.T) {
	bad := []string{
		`{"sender":"u1","client_id":"1","kind":"event","ref":3,"body":{}}`,
		`{"sender":"u1","client_id":"1","kind":"edit","ref":3,"thread":2,"body":{}}`,
		`{"sender":"u1","client_id":"1","kind":"reaction","ref":3,"mentions":["u2"],"body":{}}`,
		`{"sender":"u1","client_id":"1","reply_to":3,"quote":{"seq":2,"sender":"u2","snippet":""},"body":{}}`,
		`{"sender":"u1","client_id":"1","mentions":["not an id"],"body":{}}`,
		`{"sender":"u1","client_id":"1","mentions":["@everyone"],"body":{}}`,
	}
	for _, s := range bad {
		if _, err := DecodeEnvelope([]byte(s)); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("%s: got %v, want ErrBadEnvelope", s, err)
		}
	}
	many := make([]string, MaxMentions+1)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	e := Envelope{Sender: "u1", ClientID: "1", Mentions: many, Body: json.RawMessage(`{}`)}
	if err := e.Check(); !errors.Is(err, ErrBadEnvelope) {
		t.Errorf("%d mentions: %v", len(many), err)
	}
	good := []string{
		`{"sender":"u1","client_id":"1","kind":"event","body":{"action":"renamed","title":"x"}}`,
		`{"sender":"u1","client_id":"1","reply_to":3,"quote":{"seq":3,"sender":"u2","snippet":"x"},"thread":1,"mentions":["u2","@all"],"body":{}}`,
	}
	for _, s := range good {
		if _, err := DecodeEnvelope([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestSnippet(t *testing.T) {
	long := strings.Repeat("é", 200)
	cases := []struct {
		body, kind, want string
	}{
		{`{"text":"  hello \n\t world  "}`, "", "hello world"},
		{`{"text":"` + long + `"}`, "", strings.Repeat("é", MaxSnippetRunes)},
		{`{"text":"a\u0000b"}`, "", "ab"},
		{`{"image":"x"}`, "", "message"},
		{`{"text":""}`, "", "message"},
		{`{"text":5}`, "", "message"},
		{`{"action":"renamed"}`, KindEvent, KindEvent},
		{`{"nested":{"text":"no"}}`, "", "message"},
	}
	for _, c := range cases {
		if got := Snippet(json.RawMessage(c.body), c.kind); got != c.want {
			t.Errorf("Snippet(%s, %q) = %q, want %q", c.body, c.kind, got, c.want)
		}
	}
}
