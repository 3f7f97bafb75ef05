// Package auth verifies and issues the JWTs clients present to the gateway:
// HS256 with a shared secret by default, RS256 or EdDSA with a public key
// file when configured. sub is the user id and exp is required.
package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/protocol"
)

// Errors.
var (
	// ErrInvalidToken covers every token that does not verify.
	ErrInvalidToken = errors.New("invalid token")
	// ErrNoKey is returned by New when neither a secret nor a key is given.
	ErrNoKey = errors.New("no JWT secret or public key configured")
)

// Config selects how tokens are verified.
type Config struct {
	// Secret is the HS256 shared secret, used as the raw bytes of the string.
	Secret string
	// PublicKeyFile is a PEM file with an RSA or Ed25519 public key; when
	// set, RS256 or EdDSA tokens are accepted instead of HS256.
	PublicKeyFile string
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// Verifier checks tokens.
type Verifier struct {
	key     any
	methods []string
	parser  *jwt.Parser
}

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	v := &Verifier{}
	switch {
	case cfg.PublicKeyFile != "":
		pemBytes, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read public key: %w", err)
		}
		key, err := parsePublicKey(pemBytes)
		if err != nil {
			return nil, err
		}
		v.key = key
		switch key.(type) {
		case *rsa.PublicKey:
			v.methods = []string{jwt.SigningMethodRS256.Alg()}
		case ed25519.PublicKey:
			v.methods = []string{jwt.SigningMethodEdDSA.Alg()}
		}
	case cfg.Secret != "":
		v.key = []byte(cfg.Secret)
		v.methods = []string{jwt.SigningMethodHS256.Alg()}
	default:
		return nil, ErrNoKey
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(v.methods), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(cfg.Leeway)}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Verify returns the user id of a valid token.
func (v *Verifier) Verify(token string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !protocol.ValidID(claims.Subject) {
		return "", fmt.Errorf("%w: sub must match [A-Za-z0-9_-]{1,64}", ErrInvalidToken)
	}
	return claims.Subject, nil
}

// IssueHS256 signs a token for user that expires after ttl.
func IssueHS256(secret, user string, ttl time.Duration, now time.Time) (string, error) {
	if !protocol.ValidID(user) {
		return "", fmt.Errorf("user id %q must match [A-Za-z0-9_-]{1,64}", user)
	}
	if secret == "" {
		return "", ErrNoKey
	}
	claims := jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

// Issue signs a token with any key the jwt library knows (used by tests and
// tools holding a private key): HS256 for []byte, RS256 for RSA, EdDSA for
// Ed25519.
func Issue(key crypto.PrivateKey, claims jwt.Claims) (string, error) {
	var m jwt.SigningMethod
	switch key.(type) {
	case []byte:
		m = jwt.SigningMethodHS256
	case *rsa.PrivateKey:
		m = jwt.SigningMethodRS256
	case ed25519.PrivateKey:
		m = jwt.SigningMethodEdDSA
	case *ecdsa.PrivateKey:
		m = jwt.SigningMethodES256
	default:
		return "", fmt.Errorf("unsupported key type %T", key)
	}
	return jwt.NewWithClaims(m, claims).SignedString(key)
}

func parsePublicKey(pemBytes []byte) (any, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("public key file holds no PEM block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		if rsaKey, err2 := x509.ParsePKCS1PublicKey(block.Bytes); err2 == nil {
			return rsaKey, nil
		}
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey, ed25519.PublicKey:
		return k, nil
	default:
		return nil, fmt.Errorf("public key type %T is not supported (RSA or Ed25519)", key)
	}
}
