package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func writePEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerify(t *testing.T) {
	now := time.Now()
	claims := func(sub string, exp time.Time) jwt.RegisteredClaims {
		c := jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(now)}
		if !exp.IsZero() {
			c.ExpiresAt = jwt.NewNumericDate(exp)
		}
		return c
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	hs, err := New(Config{Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := New(Config{PublicKeyFile: writePEM(t, &rsaKey.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	ed, err := New(Config{PublicKeyFile: writePEM(t, edPub)})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(key any, c jwt.Claims) string {
		tok, err := Issue(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims("u1", now.Add(time.Hour))).SignedString(jwt.UnsafeAllowNoneSignatureType)
	// HS256 signed with the RSA public key's bytes: the classic confusion.
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	confused := sign(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), claims("u1", now.Add(time.Hour)))

	tests := []struct {
		name  string
		v     *Verifier
		token string
		user  string
	}{
		{"hs256", hs, sign([]byte("s3cret"), claims("u1", now.Add(time.Hour))), "u1"},
		{"hs256 wrong secret", hs, sign([]byte("other"), claims("u1", now.Add(time.Hour))), ""},
		{"expired", hs, sign([]byte("s3cret"), claims("u1", now.Add(-time.Minute))), ""},
		{"no exp", hs, sign([]byte("s3cret"), claims("u1", time.Time{})), ""},
		{"sub outside charset", hs, sign([]byte("s3cret"), claims("u.1", now.Add(time.Hour))), ""},
		{"empty sub", hs, sign([]byte("s3cret"), claims("", now.Add(time.Hour))), ""},
		{"alg none", hs, noneTok, ""},
		{"garbage", hs, "not.a.jwt", ""},
		{"rs256", rs, sign(rsaKey, claims("u2", now.Add(time.Hour))), "u2"},
		{"hs256 to rsa verifier", rs, sign([]byte("s3cret"), claims("u2", now.Add(time.Hour))), ""},
		{"alg confusion", rs, confused, ""},
		{"eddsa", ed, sign(edPriv, claims("u3", now.Add(time.Hour))), "u3"},
		{"rs256 to eddsa verifier", ed, sign(rsaKey, claims("u3", now.Add(time.Hour))), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := tt.v.Verify(tt.token)
			if tt.user == "" {
				if err == nil || !errors.Is(err, ErrInvalidToken) {
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

func TestIssueHS256(t *testing.T) {
	v, _ := New(Config{Secret: "k"})
	tok, err := IssueHS256("k", "alice", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if u, err := v.Verify(tok); err != nil || u != "alice" {
		t.Fatalf("Verify = %q, %v", u, err)
	}
	if _, err := IssueHS256("k", "bad id", time.Minute, time.Now()); err == nil {
		t.Fatal("issued a token for an invalid id")
	}
	if _, err := New(Config{}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("New without key = %v", err)
	}
	if _, err := New(Config{PublicKeyFile: filepath.Join(t.TempDir(), "missing")}); err == nil || !strings.Contains(err.Error(), "read public key") {
		t.Fatalf("New with missing key file = %v", err)
	}
}

func TestClaims(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	secret := []byte("s3cret")
	at := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(now.Add(d)) }
	base := func() jwt.RegisteredClaims {
		return jwt.RegisteredClaims{Subject: "u1", IssuedAt: at(0), ExpiresAt: at(time.Hour)}
	}
	with := func(f func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := base()
		f(&c)
		return c
	}
	plain := Config{Secret: string(secret), Now: func() time.Time { return now }, Leeway: 30 * time.Second}
	strict := plain
	strict.Audience, strict.Issuer = "natter", "https://id.example"

	tests := []struct {
		name   string
		cfg    Config
		claims jwt.RegisteredClaims
		ok     bool
	}{
		{"valid", plain, base(), true},
		{"expired within leeway", plain, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = at(-20 * time.Second) }), true},
		{"expired beyond leeway", plain, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = at(-40 * time.Second) }), false},
		{"expired, no leeway", Config{Secret: "s3cret", Now: plain.Now}, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = at(-time.Second) }), false},
		{"nbf within leeway", plain, with(func(c *jwt.RegisteredClaims) { c.NotBefore = at(20 * time.Second) }), true},
		{"nbf in the future", plain, with(func(c *jwt.RegisteredClaims) { c.NotBefore = at(time.Minute) }), false},
		{"nbf passed", plain, with(func(c *jwt.RegisteredClaims) { c.NotBefore = at(-time.Minute) }), true},
		{"iat within leeway", plain, with(func(c *jwt.RegisteredClaims) { c.IssuedAt = at(20 * time.Second) }), true},
		{"iat in the future", plain, with(func(c *jwt.RegisteredClaims) { c.IssuedAt = at(time.Minute) }), false},
		{"no iat", plain, with(func(c *jwt.RegisteredClaims) { c.IssuedAt = nil }), true},
		{"aud and iss not checked when unset", plain, with(func(c *jwt.RegisteredClaims) { c.Audience, c.Issuer = jwt.ClaimStrings{"x"}, "y" }), true},
		{"aud and iss match", strict, with(func(c *jwt.RegisteredClaims) {
			c.Audience, c.Issuer = jwt.ClaimStrings{"other", "natter"}, "https://id.example"
		}), true},
		{"aud missing", strict, with(func(c *jwt.RegisteredClaims) { c.Issuer = "https://id.example" }), false},
		{"aud wrong", strict, with(func(c *jwt.RegisteredClaims) { c.Audience, c.Issuer = jwt.ClaimStrings{"other"}, "https://id.example" }), false},
		{"iss missing", strict, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"natter"} }), false},
		{"iss wrong", strict, with(func(c *jwt.RegisteredClaims) {
			c.Audience, c.Issuer = jwt.ClaimStrings{"natter"}, "https://evil.example"
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := Issue(secret, tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			user, err := v.Verify(tok)
			if tt.ok && (err != nil || user != "u1") {
				t.Fatalf("Verify = %q, %v; want u1", user, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %q, %v; want ErrInvalidToken", user, err)
			}
		})
	}
	if _, err := New(Config{Secret: "s", Leeway: -time.Second}); err == nil {
		t.Fatal("New accepted a negative leeway")
	}
}

func TestVerifyUntil(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	v, err := New(Config{Secret: "s3cret", Now: func() time.Time { return now }, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := IssueHS256("s3cret", "u1", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	uid, until, err := v.VerifyUntil(tok)
	if err != nil || uid != "u1" || !until.Equal(now.Add(time.Hour+30*time.Second)) {
		t.Fatalf("VerifyUntil = %q, %v, %v; want u1 valid until exp plus the leeway", uid, until, err)
	}
}
