package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// checkRequestDecode fails unless DecodeRequest answers data exactly as
// json.Unmarshal does (the same Request, the same error), and unless its
// fast path, where it takes data, was right to.
func checkRequestDecode(t testing.TB, data []byte) {
	t.Helper()
	if !utf8.Valid(data) {
		return // the gateway refuses it before either decoder
	}
	var std Request
	stdErr := json.Unmarshal(data, &std)
	var got Request
	gotErr := DecodeRequest(data, &got)
	if (stdErr == nil) != (gotErr == nil) || (stdErr != nil && stdErr.Error() != gotErr.Error()) {
		t.Fatalf("DecodeRequest(%q) = %v, json.Unmarshal = %v", data, gotErr, stdErr)
	}
	if !reflect.DeepEqual(got, std) {
		t.Fatalf("DecodeRequest(%q) = %#v, json.Unmarshal = %#v", data, got, std)
	}
	var fast Request
	if decodeRequestFast(data, &fast) {
		if stdErr != nil {
			t.Fatalf("fast path took %q, which encoding/json refuses: %v", data, stdErr)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("fast path decoded %q as %#v, encoding/json as %#v", data, fast, std)
		}
	}
}

var requestSeeds = []string{
	`{"type":"send","id":"42","conv":"g_AbCdEfGhIjKlMnOpQrStUv","client_id":"5f0c8a6e-3b1d-4c55-9a51-2b7d1f0e9c11","body":{"text":"the quick brown fox"}}`,
	` { "type" : "send" , "id":"1", "conv":"c1", "client_id":"m-1", "body": {"a":[1,-2.5e+3,0,true,false,null,"\u00e9\"\\\/\b\f\n\r\t"]} } `,
	`{"type":"send","conv":"c1","client_id":"e","kind":"edit","ref":4,"body":{"text":"x"}}`,
	`{"type":"send","conv":"c1","client_id":"e","kind":"reaction","ref":-4,"body":{}}`,
	`{"type":"send","conv":"c1","client_id":"r","reply_to":3,"thread":2,"resend":true,"body":{}}`,
	`{"type":"send","conv":"c1","client_id":"r","resend":false,"body":{}}`,
	`{"type":"send","conv":"c1","client_id":"r","resend":null,"body":{}}`,
	`{"type":"send","conv":"c1","client_id":"r","mentions":["bob"],"body":{}}`,
	`{"type":"send","type":"read","id":"1","id":"2","body":{},"body":{"x":1}}`,
	`{"type":"send","conv":"c1","body":null}`,
	`{"type":"send","conv":"c1","body":"text"}`,
	`{"type":"send","conv":"c1","body":[1]}`,
	`{"type":"send","conv":"c1","body":{"a":01}}`,
	`{"type":"send","conv":"c1","body":{"a":1,}}`,
	`{"type":"send","ref":9223372036854775807,"body":{}}`,
	`{"type":"send","ref":9223372036854775808,"body":{}}`,
	`{"type":"send","ref":-9223372036854775808,"body":{}}`,
	`{"type":"send","ref":-9223372036854775809,"body":{}}`,
	`{"type":"send","ref":-0,"body":{}}`,
	`{"type":"send","ref":01,"body":{}}`,
	`{"type":"send","ref":1.0,"body":{}}`,
	`{"type":"send","ref":1e2,"body":{}}`,
	`{"type":"send","ref":"1","body":{}}`,
	`{"type":"send","reply_to":18446744073709551615,"body":{}}`,
	`{"type":"send","reply_to":18446744073709551616,"body":{}}`,
	`{"type":"send","reply_to":-1,"body":{}}`,
	`{"type":"read","id":"r1","conv":"d_x","seq":17}`,
	`{"type":"read","conv":"d_x","seq":-17}`,
	`{"type":"delivered","conv":"d_x","seq":170}`,
	`{"type":"typing","conv":"d_x"}`,
	`{"type":"ping"}`,
	`{"type":"ping","id":"p\u0031"}`,
	`{"Type":"ping"}`,
	`{"TYPE":"send","CONV":"c"}`,
	`{"type":"hello","token":"eyJ.x.y"}`,
	`{"type":"history","conv":"c1","before":10,"limit":50}`,
	`{"type":"unknown_type","id":"1"}`,
	`{"type":"se\"nd"}`,
	`{"type":7}`,
	`{"type":null}`,
	`{"id":"no-type"}`,
	`{"type":"send"}x`,
	`{"type":"send",}`,
	`{"type":"send" "id":"1"}`,
	`{"type":"send"`,
	`{}`,
	` {} `,
	`{`,
	`[]`,
	`null`,
	`"send"`,
	``,
	"{\"type\":\"send\",\"id\":\"\x01\"}",
	"{\"type\":\"send\",\"id\":\"\u2028\"}",
}

func TestDecodeRequestSeeds(t *testing.T) {
	took := 0
	for _, s := range requestSeeds {
		checkRequestDecode(t, []byte(s))
		var r Request
		if decodeRequestFast([]byte(s), &r) {
			took++
		}
		// Every prefix, too: truncated input must never be taken.
		for i := range len(s) {
			checkRequestDecode(t, []byte(s[:i]))
		}
	}
	if took < 15 {
		t.Fatalf("the fast path took %d of the seeds; the hot frames should go there", took)
	}
}

// TestDecodeRequestHotFramesFast: the frames a busy client sends take the
// fast path, and the send's body is a copy of the frame's bytes.
func TestDecodeRequestHotFramesFast(t *testing.T) {
	for _, s := range []string{
		`{"type":"send","id":"42","conv":"c1","client_id":"m-1","body":{"text":"hi"}}`,
		`{"type":"read","id":"r1","conv":"d_x","seq":17}`,
		`{"type":"typing","conv":"d_x"}`,
		`{"type":"delivered","conv":"d_x","seq":170}`,
		`{"type":"ping","id":"p"}`,
	} {
		data := []byte(s)
		var r Request
		if !decodeRequestFast(data, &r) {
			t.Errorf("%s: not taken by the fast path", s)
			continue
		}
		if len(r.Body) > 0 {
			body := string(r.Body)
			clear(data)
			if string(r.Body) != body {
				t.Errorf("%s: the body shares the frame's bytes", s)
			}
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkRequestDecode(t, data) })
}

// BenchmarkDecodeRequest compares the fast path with encoding/json on a
// send frame.
func BenchmarkDecodeRequest(b *testing.B) {
	frame := []byte(requestSeeds[0])
	b.Run("DecodeRequest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Request
			if err := DecodeRequest(frame, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Request
			if err := json.Unmarshal(frame, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
