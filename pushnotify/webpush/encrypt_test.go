package webpush

import (
	"crypto/ecdh"
	"encoding/base64"
	"testing"
)

// The example of RFC 8291 section 5 (public test keys).
const (
	rfcPlaintext = "When I grow up, I want to be a watermelon"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcUAPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	rfcASPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	rfcSalt      = "DGv6ra1nlYgDCS1FRnbzlw"
	rfcBody      = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml" +
		"mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT" +
		"pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)

func TestEncryptRFC8291Example(t *testing.T) {
	d := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	as, err := ecdh.P256().NewPrivateKey(d(rfcASPrivate))
	if err != nil {
		t.Fatal(err)
	}
	body, err := encryptWith([]byte(rfcPlaintext), d(rfcUAPublic), d(rfcAuth), as, d(rfcSalt))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(body); got != rfcBody {
		t.Errorf("body\n got %s\nwant %s", got, rfcBody)
	}
}

func TestEncryptLimits(t *testing.T) {
	ua, _ := ecdh.P256().GenerateKey(nil)
	pub := ua.PublicKey().Bytes()
	if _, err := encrypt(make([]byte, MaxPayload+1), pub, make([]byte, 16)); err == nil {
		t.Error("a payload over MaxPayload was encrypted")
	}
	body, err := encrypt(make([]byte, MaxPayload), pub, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != recordSize {
		t.Errorf("a full payload makes %d bytes, want exactly one %d-byte record", len(body), recordSize)
	}
	if _, err := encrypt([]byte("x"), pub, make([]byte, 15)); err == nil {
		t.Error("a 15-byte auth secret was accepted")
	}
	if _, err := encrypt([]byte("x"), []byte{4, 1, 2}, make([]byte, 16)); err == nil {
		t.Error("a bad p256dh was accepted")
	}
}

func TestTopic(t *testing.T) {
	if got := topic("g_team-1"); got != "g_team-1" {
		t.Errorf("topic kept %q as %q", "g_team-1", got)
	}
	for _, id := range []string{"has space", "this-collapse-id-is-longer-than-32-characters"} {
		if got := topic(id); !topicRE.MatchString(got) || len(got) != 32 {
			t.Errorf("topic(%q) = %q, not a 32-character URL-safe token", id, got)
		}
	}
}
