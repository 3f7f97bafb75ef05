package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

var benchEnvelope = []byte(`{"sender":"alice-0123456789","client_id":"5f0c8a6e-3b1d-4c55-9a51-2b7d1f0e9c11","ts":"2026-11-27T01:39:17.753960963Z","body":{"text":"the quick brown fox jumps over the lazy dog, twice: the quick brown fox"}}`)

// BenchmarkAppendMessageFrame encodes the message push the fan-out builds
// once per message.
func BenchmarkAppendMessageFrame(b *testing.B) {
	env, err := DecodeEnvelope(benchEnvelope)
	if err != nil {
		b.Fatal(err)
	}
	m := env.Message("g_AbCdEfGhIjKlMnOpQrStUv", 123456789, "2026-11-27T01:39:17.753960963Z")
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessageFrame(buf[:0], m)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkMarshalMessageFrame is the encoding/json baseline that
// AppendMessageFrame replaces.
func BenchmarkMarshalMessageFrame(b *testing.B) {
	env, err := DecodeEnvelope(benchEnvelope)
	if err != nil {
		b.Fatal(err)
	}
	m := env.Message("g_AbCdEfGhIjKlMnOpQrStUv", 123456789, "2026-11-27T01:39:17.753960963Z")
	m.Type = TypeMessage
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEnvelope is the fan-out's per-message decode.
func BenchmarkDecodeEnvelope(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEnvelope)))
	for b.Loop() {
		if _, err := DecodeEnvelope(benchEnvelope); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendMessage encodes one item of a sync or history page.
func BenchmarkAppendMessage(b *testing.B) {
	env, err := DecodeEnvelope(benchEnvelope)
	if err != nil {
		b.Fatal(err)
	}
	m := env.Message("g_AbCdEfGhIjKlMnOpQrStUv", 123456789, "")
	m.Prev = 123456788
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], m)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncodeMessageJSON is the json.Encoder baseline that
// AppendMessage replaces in pages.
func BenchmarkEncodeMessageJSON(b *testing.B) {
	env, err := DecodeEnvelope(benchEnvelope)
	if err != nil {
		b.Fatal(err)
	}
	m := env.Message("g_AbCdEfGhIjKlMnOpQrStUv", 123456789, "")
	m.Prev = 123456788
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := enc.Encode(m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}
