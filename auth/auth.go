// Package auth verifies and issues the JWTs clients present to the gateway:
// HS256 with a shared secret by default, RS256 or EdDSA with a public key
// file, or any of the three from a JWKS file whose keys are selected by kid
// and which is reloaded when it changes. sub is the user id and exp is
// required; nbf and iat are honoured, aud and iss checked when configured.
package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/protocol"
)

// DefaultReloadInterval is how often a JWKS file is checked for changes.
const DefaultReloadInterval = 5 * time.Second

// Config selects how tokens are verified. Exactly one key source is used:
// JWKSFile, else PublicKeyFile, else Secret.
type Config struct {
	// Secret is the HS256 shared secret, used as the raw bytes of the string.
	Secret string
	// PublicKeyFile is a PEM file with an RSA or Ed25519 public key; when
	// set, RS256 or EdDSA tokens are accepted instead of HS256.
	PublicKeyFile string
	// JWKSFile is a JSON Web Key Set (RFC 7517) with RSA, OKP Ed25519 and
	// oct keys. A token's kid selects its key; a token without kid is
	// accepted only when exactly one key of its algorithm is in the set.
	// The file is re-read when it changes; a file that does not parse
	// leaves the previous keys in place.
	JWKSFile string
	// ReloadInterval is how often JWKSFile is checked; DefaultReloadInterval
	// when zero.
	ReloadInterval time.Duration
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// Issuer, when set, must be the token's iss.
	Issuer string
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// Logger reports JWKS reloads; slog.Default by default.
	Logger *slog.Logger
}

// Verifier checks tokens. With a JWKS file it runs a goroutine that
// reloads the file until Close.
type Verifier struct {
	cfg    Config
	keys   atomic.Pointer[keySet]
	parser *jwt.Parser

	// JWKS reloading: the hash of the file last looked at, good or bad.
	lastSum [sha256.Size]byte
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New returns a Verifier for cfg. With cfg.JWKSFile it has started the
// reloader; Close stops it.
func New(cfg Config) (*Verifier, error) {
	if cfg.Leeway < 0 {
		return nil, errors.New("JWT leeway must not be negative")
	}
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v := &Verifier{cfg: cfg}
	switch {
	case cfg.JWKSFile != "":
		data, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("read JWKS: %w", err)
		}
		set, err := parseJWKS(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.JWKSFile, err)
		}
		v.keys.Store(set)
		v.lastSum = sha256.Sum256(data)
	case cfg.PublicKeyFile != "":
		pemBytes, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read public key: %w", err)
		}
		pub, err := parsePublicKey(pemBytes)
		if err != nil {
			return nil, err
		}
		k := key{pub: pub, alg: algRS256}
		if _, ok := pub.(ed25519.PublicKey); ok {
			k.alg = algEdDSA
		}
		set, _ := newKeySet([]key{k}, true)
		v.keys.Store(set)
	case cfg.Secret != "":
		set, _ := newKeySet([]key{{alg: algHS256, pub: []byte(cfg.Secret)}}, true)
		v.keys.Store(set)
	default:
		return nil, ErrNoKey
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(cfg.Leeway)}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	if cfg.JWKSFile != "" {
		v.stop, v.done = make(chan struct{}), make(chan struct{})
		go v.reloadLoop()
	}
	return v, nil
}

// Close stops the JWKS reloader and waits for it. It is idempotent and
// harmless on a Verifier without one.
func (v *Verifier) Close() error {
	v.once.Do(func() {
		if v.stop != nil {
			close(v.stop)
			<-v.done
		}
	})
	return nil
}

// Verify returns the user id of a valid token.
func (v *Verifier) Verify(token string) (string, error) {
	uid, _, err := v.VerifyUntil(token)
	return uid, err
}

// VerifyUntil returns the user id of a valid token and the instant it
// stops being valid: its exp plus the leeway. A connection authenticated
// with it must end then, unless it presented a fresh token.
func (v *Verifier) VerifyUntil(token string) (string, time.Time, error) {
	var claims jwt.RegisteredClaims
	set := v.keys.Load()
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		k, err := set.lookup(t.Method.Alg(), t.Header["kid"])
		if err != nil {
			return nil, err
		}
		return k.pub, nil
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !protocol.ValidID(claims.Subject) {
		return "", time.Time{}, fmt.Errorf("%w: sub must match [A-Za-z0-9_-]{1,64}", ErrInvalidToken)
	}
	// exp is required by the parser, so it is set.
	return claims.Subject, claims.ExpiresAt.Add(v.cfg.Leeway), nil
}

// reloadLoop polls the JWKS file. Polling rather than inotify: it sees
// the renames of atomic writes and Kubernetes' symlink-swapped config
// maps alike, and needs no dependency.
func (v *Verifier) reloadLoop() {
	defer close(v.done)
	t := time.NewTicker(v.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
			v.reload()
		}
	}
}

// reload swaps in the JWKS file's keys when its content changed and
// parses; a bad file is logged once and the previous keys stay.
func (v *Verifier) reload() {
	log := v.cfg.Logger.With("file", v.cfg.JWKSFile)
	data, err := os.ReadFile(v.cfg.JWKSFile)
	if err != nil {
		var zero [sha256.Size]byte
		if v.lastSum != zero {
			log.Error("JWKS file unreadable; keeping the previous keys", "err", err)
			v.lastSum = zero
		}
		return
	}
	sum := sha256.Sum256(data)
	if bytes.Equal(sum[:], v.lastSum[:]) {
		return
	}
	v.lastSum = sum
	set, err := parseJWKS(data)
	if err != nil {
		log.Error("JWKS file changed but is not valid; keeping the previous keys", "err", err)
		return
	}
	v.keys.Store(set)
	log.Info("JWKS reloaded", "keys", len(set.keys))
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
