package protocol

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdEncode is what pages wrote before AppendMessage: encoding/json
// without HTML escaping, the newline dropped.
func stdEncode(t testing.TB, m *Message) ([]byte, error) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// checkEncode fails unless AppendMessage writes what encoding/json writes
// for m, byte for byte, and the result decodes back to m.
// allValid reports whether every one of ss is valid UTF-8.
func allValid(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

func checkEncode(t testing.TB, m *Message) {
	t.Helper()
	want, err := stdEncode(t, m)
	if err != nil {
		return // a body encoding/json refuses: not a stored message
	}
	got := AppendMessage([]byte("x"), m)
	if got[0] != 'x' {
		t.Fatalf("AppendMessage overwrote dst")
	}
	got = got[1:]
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendMessage(%#v)\n got %q\nwant %q", m, got, want)
	}
	var back Message
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("AppendMessage(%#v) = %q: %v", m, got, err)
	}
	// Each string on its own: invalid pieces can concatenate into valid
	// UTF-8 ("\xc3" + "\x99"), while each is still decoded to U+FFFD.
	strs := append([]string{m.Conv, m.Sender, m.ClientID, m.TS, m.Kind, m.Type, m.DeletedBy}, m.Mentions...)
	if m.Quote != nil {
		strs = append(strs, m.Quote.Sender, m.Quote.Kind, m.Quote.Snippet)
	}
	if allValid(strs...) {
		var compact bytes.Buffer
		if len(m.Body) > 0 {
			if err := json.Compact(&compact, m.Body); err != nil {
				t.Fatal(err)
			}
		}
		exp := *m
		exp.Body = compact.Bytes()
		if len(exp.Mentions) == 0 {
			exp.Mentions = nil // omitted when empty
		}
		if len(m.Body) == 0 {
			exp.Body = json.RawMessage("null")
		}
		if !reflect.DeepEqual(&back, &exp) {
			t.Fatalf("AppendMessage(%#v) decodes to %#v", m, &back)
		}
	}
}

var encodeStrings = []string{
	"", "u1", "c-1", "2026-01-01T00:00:00.123456789Z", "edit",
	`we"ird\back`, "<script>&amp;</script>", "\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f",
	"\u2028\u2029", "é ü 日本 😀", "\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"ok\xe2\x80", "\xe2\x80\xa8x\xe2\x80\xa9", strings.Repeat("long ", 50),
}

var encodeBodies = []string{
	`{}`, `{"text":"hi"}`, `{"t":"<b>&amp;</b>","n":[1,2.5e3,-0,true,false,null]}`,
	` { "a" : [ 1 , { "b" : "x y" } ] , "c\"d" : "e \\" } `,
	"{\"t\":\"\\u2028\\u0000 \u2028\"}", `{"s":"\" \\\" "}`, "{\n\t\"a\":\r\n1}", `"x"`, `[1, 2]`,
}

func TestAppendMessageMatchesEncodingJSON(t *testing.T) {
	for _, s := range encodeStrings {
		for _, body := range encodeBodies {
			checkEncode(t, &Message{Conv: s, Seq: 7, Sender: s, ClientID: s, TS: s, Body: json.RawMessage(body), Prev: 6})
			checkEncode(t, &Message{Type: s, Conv: "c", Seq: 1<<64 - 1, Sender: "u", ClientID: "1", TS: "t",
				Kind: s, Ref: 3, Body: json.RawMessage(body), EditSeq: 9, Deleted: true})
		}
	}
	checkEncode(t, &Message{Conv: "c"})                          // nil body: null
	checkEncode(t, &Message{Conv: "c", Body: json.RawMessage{}}) // refused by encoding/json: skipped
	// Random strings of the bytes that matter, and random messages.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", " ", `"`, `\`, "/", "<", ">", "&", "\x00", "\x1f", "\x7f", "\n", "\b",
		"\u2028", "\u2029", "é", "😀", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80"}
	randString := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 20000 {
		body, _ := json.Marshal(map[string]string{randString(): randString()})
		if rng.IntN(4) == 0 {
			body = append([]byte(" \n"), append(body, '\t')...)
		}
		checkEncode(t, &Message{
			Type: randString(), Conv: randString(), Seq: rng.Uint64(), Sender: randString(),
			ClientID: randString(), TS: randString(), Kind: randString(), Ref: rng.Uint64N(3),
			Body: body, EditSeq: rng.Uint64N(3), Deleted: rng.IntN(2) == 0, Prev: rng.Uint64(),
		})
		m := &Message{Conv: randString(), Seq: rng.Uint64(), Sender: randString(), ClientID: randString(),
			TS: randString(), ReplyTo: rng.Uint64N(3), Thread: rng.Uint64N(3), Body: body,
			DeletedBy: randString(), ThreadCount: rng.Uint64N(3), ThreadLastSeq: rng.Uint64N(3)}
		if rng.IntN(2) == 0 {
			m.Quote = &Quote{Seq: m.ReplyTo, Sender: randString(), Kind: randString(), Snippet: randString(), Deleted: rng.IntN(2) == 0}
		}
		switch rng.IntN(3) {
		case 0:
			m.Mentions = []string{}
		case 1:
			m.Mentions = []string{randString(), MentionAll, randString()}
		}
		checkEncode(t, m)
	}
}

func TestAppendMessageNoAlloc(t *testing.T) {
	m := &Message{Conv: "c-1", Seq: 42, Sender: "alice", ClientID: "c1", TS: "2026-01-01T00:00:00Z",
		Body: json.RawMessage(`{"text":"the quick brown fox"}`), Prev: 41}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendMessage(buf[:0], m) }); n != 0 {
		t.Fatalf("AppendMessage allocates %v times", n)
	}
}

// FuzzEncodeMessage checks AppendMessage against encoding/json for
// arbitrary strings and bodies: the same bytes, or, where encoding/json
// refuses the body (not JSON), nothing to compare.
func FuzzEncodeMessage(f *testing.F) {
	for i, s := range encodeStrings {
		f.Add(s, s, "u1", encodeStrings[(i+3)%len(encodeStrings)], "edit", []byte(encodeBodies[i%len(encodeBodies)]), uint64(i), uint64(i), true)
	}
	f.Fuzz(func(t *testing.T, typ, conv, sender, ts, kind string, body []byte, seq, ref uint64, deleted bool) {
		if len(body) > 0 && !json.Valid(body) {
			return
		}
		checkEncode(t, &Message{Type: typ, Conv: conv, Seq: seq, Sender: sender, ClientID: ts + sender, TS: ts,
			Kind: kind, Ref: ref, Body: body, EditSeq: ref / 2, Deleted: deleted, Prev: seq / 3})
	})
}

// checkDecode fails unless DecodeEnvelope's fast path, where it takes
// data, decodes it as json.Unmarshal does.
func checkDecode(t testing.TB, data []byte) {
	t.Helper()
	if !utf8.Valid(data) {
		return // DecodeEnvelope refuses it before either decoder
	}
	var fast Envelope
	if !decodeEnvelopeFast(data, &fast) {
		return
	}
	var std Envelope
	if err := json.Unmarshal(data, &std); err != nil {
		t.Fatalf("fast path took %q, which encoding/json refuses: %v", data, err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("fast path decoded %q as %#v, encoding/json as %#v", data, fast, std)
	}
}

var decodeSeeds = []string{
	`{"sender":"alice","client_id":"c1","ts":"2026-01-01T00:00:00Z","body":{"text":"hi"}}`,
	` {"sender":"u1","client_id":"e1","kind":"edit","ref":4,"body": {"a":[1,-2.5e+3,0,true,false,null,"\u00e9\"\\\/\b\f\n\r\t"]} } `,
	`{"sender":"u1","sender":"u2","client_id":"1","body":{},"body":{"x":1}}`,
	`{"sender":"u1","client_id":"1","ref":18446744073709551615,"body":{}}`,
	`{"sender":"u1","client_id":"1","ref":18446744073709551616,"body":{}}`,
	`{"sender":"u1","client_id":"1","ref":01,"body":{}}`,
	`{"sender":"u1","client_id":"1","ref":1.0,"body":{}}`,
	`{"sender":"u1","client_id":"1","ref":-1,"body":{}}`,
	`{"sender":"u1","client_id":"1","ref":null,"body":{}}`,
	`{"Sender":"u1","client_id":"1","body":{}}`,
	`{"sender":"u\u00e9","client_id":"1","body":{}}`,
	`{"sender":"u1","client_id":"1","body":{"a":01}}`,
	`{"sender":"u1","client_id":"1","body":{"a":1.}}`,
	`{"sender":"u1","client_id":"1","body":{"a":"\x"}}`,
	`{"sender":"u1","client_id":"1","body":{"a":"\u12"}}`,
	`{"sender":"u1","client_id":"1","body":{"a" 1}}`,
	`{"sender":"u1","client_id":"1","body":[1,]}`,
	`{"sender":"u1","client_id":"1","body":{"a":1,}}`,
	`{"sender":"u1","client_id":"1","body":{}}x`,
	`{"sender":"u1","client_id":"1","body":{}`,
	`{"sender":"u1","client_id":"1","body":tru}`,
	`{"sender":"u1","client_id":"1","body":-}`,
	`{"sender":"u1","client_id":"1","body":1e}`,
	`{"sender":"u1","client_id":"1","body":"a` + "\x01" + `"}`,
	`{}`, ` { } `, `{"body":[[[[]]]]}`, `[]`, `null`, ``,
	`{"sender":"u1","client_id":"1","reply_to":3,"thread":2,"body":{"text":"re"}}`,
	`{"sender":"u1","client_id":"1","thread":-2,"body":{}}`,
	`{"sender":"u1","client_id":"1","reply_to":3,"quote":{"seq":3,"sender":"u2","snippet":"hi"},"mentions":["u2","@all"],"body":{}}`,
}

func TestDecodeEnvelopeFastMatchesJSON(t *testing.T) {
	took := 0
	for _, s := range decodeSeeds {
		checkDecode(t, []byte(s))
		var e Envelope
		if decodeEnvelopeFast([]byte(s), &e) {
			took++
		}
		// Every prefix, too: truncated input must never be taken.
		for i := range len(s) {
			checkDecode(t, []byte(s[:i]))
		}
	}
	if took < 5 {
		t.Fatalf("the fast path took only %d of the seeds", took)
	}
	if _, err := DecodeEnvelope([]byte(decodeSeeds[1])); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecodeEnvelopeFast checks DecodeEnvelope's fast path against
// encoding/json for arbitrary input.
func FuzzDecodeEnvelopeFast(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}
