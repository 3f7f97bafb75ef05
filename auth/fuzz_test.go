package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds mutated tokens to a Verifier holding an HS256 and an
// Ed25519 key. Verify must never panic, and whatever it accepts must carry
// exactly the claims of a token the test signed: the fuzzer cannot forge.
func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	hmac := []byte("fuzz-hmac-secret-0123456789abcdef")
	edPriv := ed25519.NewKeyFromSeed([]byte("fuzz-ed25519-seed-0123456789abcd"))
	path := filepath.Join(f.TempDir(), "jwks.json")
	writeJWKS(f, path, octJWK("hs", hmac), edJWK("ed", edPriv.Public().(ed25519.PublicKey)))
	v, err := New(Config{JWKSFile: path, ReloadInterval: time.Hour, Now: func() time.Time { return now }, Leeway: 30 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })

	claims := jwt.RegisteredClaims{Subject: "alice", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), Audience: jwt.ClaimStrings{"natter"}}
	signed := map[string]bool{} // payload claims, as canonical JSON, of every token signed here
	sign := func(key any, kid string, c jwt.Claims) string {
		tok := signKid(f, key, kid, c)
		signed[canonicalClaims(f, tok)] = true
		return tok
	}
	f.Add(sign(hmac, "hs", claims))
	f.Add(sign(edPriv, "ed", claims))
	f.Add(sign(hmac, "", claims))
	f.Add(sign(edPriv, "", jwt.RegisteredClaims{Subject: "bob", ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), NotBefore: jwt.NewNumericDate(now)}))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	f.Add(noneTok)
	f.Add(signKid(f, []byte(edPriv.Public().(ed25519.PublicKey)), "ed", claims)) // HS256 keyed with the Ed25519 public key
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")

	f.Fuzz(func(t *testing.T, token string) {
		user, err := v.Verify(token)
		if err != nil {
			if user != "" {
				t.Fatalf("Verify returned user %q with error %v", user, err)
			}
			return
		}
		got := canonicalClaims(t, token)
		if !signed[got] {
			t.Fatalf("Verify accepted %q with claims %s that were never signed", token, got)
		}
		var c struct {
			Sub string `json:"sub"`
		}
		if err := json.Unmarshal([]byte(got), &c); err != nil || c.Sub != user {
			t.Fatalf("Verify = %q for claims %s", user, got)
		}
	})
}

// canonicalClaims decodes a token's payload and re-encodes it with sorted
// keys, so that equal claims compare equal whatever their encoding.
func canonicalClaims(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", token, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		// The parser accepts padded segments too.
		if raw, err = base64.URLEncoding.DecodeString(parts[1]); err != nil {
			t.Fatalf("payload of an accepted token does not decode: %v", err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("payload of an accepted token is not a JSON object: %v", err)
	}
	out, _ := json.Marshal(m)
	return string(out)
}
