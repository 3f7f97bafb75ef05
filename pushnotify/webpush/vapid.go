package webpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GenerateVAPIDKey returns a new VAPID key pair, base64url without padding:
// the private key as the raw 32-byte scalar (Config.PrivateKey) and the
// public key as the 65-byte uncompressed point, which the web app passes
// to pushManager.subscribe as applicationServerKey.
func GenerateVAPIDKey() (private, public string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("webpush: generate VAPID key: %w", err)
	}
	raw, err := k.Bytes()
	if err != nil {
		return "", "", fmt.Errorf("webpush: generate VAPID key: %w", err)
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return "", "", fmt.Errorf("webpush: generate VAPID key: %w", err)
	}
	return b64(raw), b64(pub), nil
}

// parseVAPIDKey reads a base64url raw P-256 scalar.
func parseVAPIDKey(s string) (*ecdsa.PrivateKey, error) {
	raw, err := decodeB64(s)
	if err != nil {
		return nil, fmt.Errorf("webpush: VAPID private key: %w", err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("webpush: VAPID private key: %w", err)
	}
	return k, nil
}

// authorization is the RFC 8292 header value for a push to endpoint:
// "vapid t=<JWT>, k=<public key>", the JWT's aud being the push service's
// origin.
func (c *Client) authorization(endpoint *url.URL) (string, error) {
	now := c.cfg.Now()
	aud := endpoint.Scheme + "://" + endpoint.Host
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"aud": aud,
		"exp": now.Add(c.cfg.TokenLifetime).Unix(),
		"sub": c.cfg.Subject,
	})
	signed, err := t.SignedString(c.key)
	if err != nil {
		return "", fmt.Errorf("webpush: sign VAPID token: %w", err)
	}
	return "vapid t=" + signed + ", k=" + c.publicKey, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeB64 accepts base64url or standard base64, padded or not: browsers
// and libraries disagree on which they hand out.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	return base64.RawURLEncoding.DecodeString(s)
}

// validSubject reports whether s is a mailto: or https: URI (RFC 8292 2.1).
func validSubject(s string) bool {
	return strings.HasPrefix(s, "mailto:") && len(s) > len("mailto:") ||
		strings.HasPrefix(s, "https://") && len(s) > len("https://")
}

// maxTokenLifetime is RFC 8292's limit on exp.
const maxTokenLifetime = 24 * time.Hour
