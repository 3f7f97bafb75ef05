package client

import (
	"strings"
	"testing"
	"time"
)

func TestTokenExpiry(t *testing.T) {
	// {"alg":"HS256"}.{"sub":"alice","exp":1700000000}.sig
	tok := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2ln"
	if exp, ok := TokenExpiry(tok); !ok || !exp.Equal(time.Unix(1_700_000_000, 0)) {
		t.Fatalf("TokenExpiry = %v, %v", exp, ok)
	}
	for _, bad := range []string{"", "a.b", "a.!!!.c", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"} {
		if _, ok := TokenExpiry(bad); ok {
			t.Errorf("TokenExpiry(%q) ok", bad)
		}
	}
}

func TestRefreshAt(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct{ life, lead time.Duration }{
		{24 * time.Hour, time.Minute},
		{4 * time.Second, time.Second},
		{-time.Second, 0},
	} {
		if got := refreshAt(now, now.Add(tc.life)); !got.Equal(now.Add(tc.life - tc.lead)) {
			t.Errorf("life %v: refresh %v before exp, want %v", tc.life, now.Add(tc.life).Sub(got), tc.lead)
		}
	}
}

// FuzzTokenExpiry feeds arbitrary strings to the unverified exp reader: it
// must never panic, and an exp it reports comes from a three-part token.
func FuzzTokenExpiry(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.x", "x.eyJleHAiOiIxIn0.y", "x.eyJleHAiOjFlMzA4fQ.y", "x.bnVsbA.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if _, ok := TokenExpiry(tok); ok && len(strings.Split(tok, ".")) != 3 {
			t.Fatalf("exp read from %q", tok)
		}
	})
}
