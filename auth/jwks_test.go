package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var b64u = base64.RawURLEncoding.EncodeToString

// rsaJWK, edJWK and octJWK describe public keys as a JWKS holds them.
func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())}
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(pub)}
}

func octJWK(kid string, secret []byte) map[string]any {
	return map[string]any{"kty": "oct", "kid": kid, "k": b64u(secret)}
}

func writeJWKS(t testing.TB, path string, keys ...map[string]any) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	// Write and rename, as an operator's tooling should.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// signKid signs claims with key, naming kid in the header unless it is "".
func signKid(t testing.TB, key any, kid string, c jwt.Claims) string {
	t.Helper()
	var m jwt.SigningMethod
	switch key.(type) {
	case []byte:
		m = jwt.SigningMethodHS256
	case *rsa.PrivateKey:
		m = jwt.SigningMethodRS256
	case ed25519.PrivateKey:
		m = jwt.SigningMethodEdDSA
	}
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func userClaims(sub string) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}
}

var (
	testKeysOnce sync.Once
	testRSA      [2]*rsa.PrivateKey
)

// rsaKeys returns two RSA keys, generated once per test binary.
func rsaKeys(t testing.TB) [2]*rsa.PrivateKey {
	t.Helper()
	testKeysOnce.Do(func() {
		for i := range testRSA {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testRSA[i] = k
		}
	})
	return testRSA
}

func TestJWKS(t *testing.T) {
	rs := rsaKeys(t)
	edPub1, edPriv1, _ := ed25519.GenerateKey(rand.Reader)
	edPub2, edPriv2, _ := ed25519.GenerateKey(rand.Reader)
	hmac := []byte("a-32-byte-long-hmac-secret-value")
	path := filepath.Join(t.TempDir(), "jwks.json")
	// Two Ed25519 keys, one RSA key, one HS256 key.
	writeJWKS(t, path, rsaJWK("rsa-1", &rs[0].PublicKey), edJWK("ed-1", edPub1), edJWK("ed-2", edPub2), octJWK("hs-1", hmac))
	v, err := New(Config{JWKSFile: path})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	// Algorithm confusion: HS256 keyed with the RSA modulus, naming the RSA kid.
	confused := signKid(t, rs[0].PublicKey.N.Bytes(), "rsa-1", userClaims("u1"))
	badKid := jwt.NewWithClaims(jwt.SigningMethodHS256, userClaims("u1"))
	badKid.Header["kid"] = 7
	badKidTok, _ := badKid.SignedString(hmac)
	noneTok := jwt.NewWithClaims(jwt.SigningMethodNone, userClaims("u1"))
	noneTok.Header["kid"] = "hs-1"
	none, _ := noneTok.SignedString(jwt.UnsafeAllowNoneSignatureType)

	tests := []struct {
		name  string
		token string
		user  string
	}{
		{"rsa by kid", signKid(t, rs[0], "rsa-1", userClaims("u1")), "u1"},
		{"ed25519 by kid", signKid(t, edPriv1, "ed-1", userClaims("u2")), "u2"},
		{"second ed25519 by kid", signKid(t, edPriv2, "ed-2", userClaims("u3")), "u3"},
		{"hs256 by kid", signKid(t, hmac, "hs-1", userClaims("u4")), "u4"},
		{"rsa without kid, the only rsa key", signKid(t, rs[0], "", userClaims("u5")), "u5"},
		{"hs256 without kid, the only oct key", signKid(t, hmac, "", userClaims("u6")), "u6"},
		{"ed25519 without kid, two ed25519 keys", signKid(t, edPriv1, "", userClaims("u7")), ""},
		{"unknown kid", signKid(t, rs[0], "rsa-9", userClaims("u1")), ""},
		{"kid of another key", signKid(t, edPriv1, "ed-2", userClaims("u1")), ""},
		{"kid of a key of another type", signKid(t, edPriv1, "rsa-1", userClaims("u1")), ""},
		{"alg confusion by kid", confused, ""},
		{"kid not a string", badKidTok, ""},
		{"alg none", none, ""},
		{"signed by a key not in the set", signKid(t, rs[1], "rsa-1", userClaims("u1")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := v.Verify(tt.token)
			if tt.user == "" {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("Verify = %q, %v; want ErrInvalidToken", user, err)
				}
				return
			}
			if err != nil || user != tt.user {
				t.Fatalf("Verify = %q, %v; want %q", user, err, tt.user)
			}
		})
	}
}

func TestStaticKeyIgnoresKid(t *testing.T) {
	v, err := New(Config{Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := v.Verify(signKid(t, []byte("s3cret"), "whatever", userClaims("u1"))); err != nil || u != "u1" {
		t.Fatalf("Verify = %q, %v", u, err)
	}
}

func TestParseJWKS(t *testing.T) {
	rs := rsaKeys(t)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := rsaJWK("a", &rs[0].PublicKey)
	mod := func(m map[string]any, k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	doc := func(keys ...map[string]any) string {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return string(b)
	}
	tests := []struct {
		name, in string
		keys     int // 0: must fail
	}{
		{"one of each", doc(good, edJWK("b", edPub), octJWK("c", []byte("0123456789abcdef0123456789abcdef"))), 3},
		{"keys without kid", doc(mod(good, "kid", nil), edJWK("", edPub)), 2},
		{"not json", `{"keys":`, 0},
		{"no keys", `{"keys":[]}`, 0},
		{"keys not a list", `{"keys":{}}`, 0},
		{"duplicate kid", doc(good, edJWK("a", edPub)), 0},
		{"EC key", doc(map[string]any{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}), 0},
		{"unknown kty", doc(map[string]any{"kty": "XYZ"}), 0},
		{"rsa alg mismatch", doc(mod(good, "alg", "HS256")), 0},
		{"use enc", doc(mod(good, "use", "enc")), 0},
		{"rsa without n", doc(mod(good, "n", nil)), 0},
		{"rsa n not base64url", doc(mod(good, "n", "a+b/")), 0},
		{"rsa even e", doc(mod(good, "e", b64u([]byte{2}))), 0},
		{"rsa huge e", doc(mod(good, "e", b64u([]byte{1, 0, 0, 0, 1}))), 0},
		{"rsa 1024 bits", doc(rsaJWK("s", &small.PublicKey)), 0},
		{"okp X25519", doc(mod(edJWK("b", edPub), "crv", "X25519")), 0},
		{"okp short x", doc(edJWK("b", edPub[:31])), 0},
		{"oct empty k", doc(map[string]any{"kty": "oct", "k": ""}), 0},
		{"oct alg RS256", doc(map[string]any{"kty": "oct", "k": b64u([]byte("0123456789abcdef0123456789abcdef")), "alg": "RS256"}), 0},
		{"oct 31 bytes", doc(octJWK("c", []byte("0123456789abcdef0123456789abcde"))), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := parseJWKS([]byte(tt.in))
			if tt.keys == 0 {
				if !errors.Is(err, ErrBadJWKS) {
					t.Fatalf("parseJWKS = %v; want ErrBadJWKS", err)
				}
				return
			}
			if err != nil || len(set.keys) != tt.keys {
				t.Fatalf("parseJWKS = %v keys, %v; want %d", set, err, tt.keys)
			}
		})
	}
	if _, err := New(Config{JWKSFile: filepath.Join(t.TempDir(), "missing.json")}); err == nil || !strings.Contains(err.Error(), "read JWKS") {
		t.Fatalf("New with a missing JWKS = %v", err)
	}
}

// syncBuffer is a log sink the reloader and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestJWKSReload(t *testing.T) {
	rs := rsaKeys(t)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	edPub := edPriv.Public().(ed25519.PublicKey)
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, rsaJWK("2026-04", &rs[0].PublicKey))
	var logs syncBuffer
	const interval = 10 * time.Millisecond
	v, err := New(Config{JWKSFile: path, ReloadInterval: interval, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	oldTok := signKid(t, rs[0], "2026-04", userClaims("old"))
	newTok := signKid(t, rs[1], "2026-05", userClaims("new"))
	edTok := signKid(t, edPriv, "ed", userClaims("ed"))
	// eventually waits for the reloader to make Verify(tok) succeed or fail.
	eventually := func(tok string, ok bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := v.Verify(tok)
			if (err == nil) == ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 5s Verify = %v; want ok=%v", err, ok)
			}
			time.Sleep(interval)
		}
	}
	steps := []struct {
		name  string
		write func()
		ok    []string // tokens that must verify after the step
		bad   []string // tokens that must not
	}{
		{"initial", func() {}, []string{oldTok}, []string{newTok, edTok}},
		{"overlap: old and new keys", func() {
			writeJWKS(t, path, rsaJWK("2026-04", &rs[0].PublicKey), rsaJWK("2026-05", &rs[1].PublicKey))
		}, []string{oldTok, newTok}, []string{edTok}},
		{"old key retired", func() { writeJWKS(t, path, rsaJWK("2026-05", &rs[1].PublicKey)) }, []string{newTok}, []string{oldTok, edTok}},
		{"bad file keeps the keys", func() {
			// Renamed into place: a reader racing a plain write could
			// see it empty first and log twice.
			if err := os.WriteFile(path+".bad", []byte(`{"keys":[{"kty":"RSA"`), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".bad", path); err != nil {
				t.Fatal(err)
			}
		}, []string{newTok}, []string{oldTok}},
		{"removed file keeps the keys", func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, []string{newTok}, []string{oldTok}},
		{"file back with another key type", func() { writeJWKS(t, path, edJWK("ed", edPub)) }, []string{edTok}, []string{oldTok, newTok}},
	}
	for _, st := range steps {
		st.write()
		for _, tok := range st.ok {
			eventually(tok, true)
		}
		// The reloader has acted on the new file once a token flips; give a
		// step whose file is rejected a few polls before checking nothing moved.
		time.Sleep(5 * interval)
		for _, tok := range st.ok {
			if _, err := v.Verify(tok); err != nil {
				t.Fatalf("%s: Verify = %v", st.name, err)
			}
		}
		for _, tok := range st.bad {
			if u, err := v.Verify(tok); err == nil {
				t.Fatalf("%s: Verify accepted %q", st.name, u)
			}
		}
	}
	out := logs.String()
	for _, want := range []string{"JWKS file changed but is not valid", "JWKS file unreadable", "JWKS reloaded"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "not valid"); n != 1 {
		t.Errorf("bad file logged %d times, want once:\n%s", n, out)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.done:
	default:
		t.Fatal("reloader still running after Close")
	}
	_ = v.Close() // idempotent
}
