package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithms a key can verify; each key type verifies exactly one.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algEdDSA = "EdDSA"
)

// minOctBytes is the shortest oct (HS256) key a JWKS may hold.
const minOctBytes = 32

// key is one verification key and the one algorithm it may verify.
type key struct {
	kid string
	alg string
	pub any // []byte, *rsa.PublicKey or ed25519.PublicKey
}

// keySet is an immutable set of keys, swapped whole on reload.
type keySet struct {
	keys  []key
	byKid map[string]*key
	// static marks the one key of --jwt-secret or --jwt-public-key: it has
	// no kid and is used whatever kid a token names.
	static bool
}

func newKeySet(keys []key, static bool) (*keySet, error) {
	s := &keySet{keys: keys, byKid: make(map[string]*key, len(keys)), static: static}
	for i := range s.keys {
		k := &s.keys[i]
		if k.kid == "" {
			continue
		}
		if _, dup := s.byKid[k.kid]; dup {
			return nil, fmt.Errorf("%w: kid %q appears twice", ErrBadJWKS, k.kid)
		}
		s.byKid[k.kid] = k
	}
	return s, nil
}

// lookup selects the key for a token's header, or fails. The key's
// algorithm must be the token's: a token cannot pick how it is checked.
func (s *keySet) lookup(alg string, kid any) (*key, error) {
	if s.static {
		k := &s.keys[0]
		if k.alg != alg {
			return nil, fmt.Errorf("alg %q does not match the configured %s key", alg, k.alg)
		}
		return k, nil
	}
	if kid != nil {
		name, ok := kid.(string)
		if !ok {
			return nil, errors.New("kid is not a string")
		}
		k := s.byKid[name]
		if k == nil {
			return nil, fmt.Errorf("unknown kid %q", name)
		}
		if k.alg != alg {
			return nil, fmt.Errorf("kid %q is a %s key, token says %q", name, k.alg, alg)
		}
		return k, nil
	}
	var found *key
	for i := range s.keys {
		if s.keys[i].alg != alg {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("token has no kid and several %s keys are configured", alg)
		}
		found = &s.keys[i]
	}
	if found == nil {
		return nil, fmt.Errorf("no %s key configured", alg)
	}
	return found, nil
}

// jwk is the subset of RFC 7517/7518/8037 members Natter reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	K   string `json:"k"`
}

// parseJWKS reads a JWK Set: RSA ("n", "e") keys verify RS256, OKP Ed25519
// ("x") keys EdDSA and oct ("k") keys HS256. A key whose "alg" or "use"
// says otherwise, or whose material is malformed, fails the whole file,
// as do duplicate kids: a half-read key set is worse than the previous
// one. Keys of other types (EC, for instance) are not supported and fail
// the file too, so that an operator is not surprised by a key that never
// verifies anything.
func parseJWKS(data []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJWKS, err)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrBadJWKS)
	}
	keys := make([]key, 0, len(doc.Keys))
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrBadJWKS, i, err)
		}
		k, err := j.key()
		if err != nil {
			return nil, fmt.Errorf("%w: key %d (kid %q): %v", ErrBadJWKS, i, j.Kid, err)
		}
		keys = append(keys, k)
	}
	return newKeySet(keys, false)
}

func (j *jwk) key() (key, error) {
	k := key{kid: j.Kid}
	if j.Use != "" && j.Use != "sig" {
		return k, fmt.Errorf("use %q is not sig", j.Use)
	}
	switch j.Kty {
	case "RSA":
		n, err := b64(j.N, "n")
		if err != nil {
			return k, err
		}
		e, err := b64(j.E, "e")
		if err != nil {
			return k, err
		}
		if len(e) > 4 {
			return k, errors.New("e is too large")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		if exp < 3 || exp%2 == 0 {
			return k, fmt.Errorf("e = %d is not a usable RSA exponent", exp)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
		if pub.N.BitLen() < 2048 {
			return k, fmt.Errorf("RSA modulus of %d bits; at least 2048 are required", pub.N.BitLen())
		}
		k.alg, k.pub = algRS256, pub
	case "OKP":
		if j.Crv != "Ed25519" {
			return k, fmt.Errorf("OKP curve %q is not Ed25519", j.Crv)
		}
		x, err := b64(j.X, "x")
		if err != nil {
			return k, err
		}
		if len(x) != ed25519.PublicKeySize {
			return k, fmt.Errorf("x is %d bytes, Ed25519 needs %d", len(x), ed25519.PublicKeySize)
		}
		k.alg, k.pub = algEdDSA, ed25519.PublicKey(x)
	case "oct":
		secret, err := b64(j.K, "k")
		if err != nil {
			return k, err
		}
		// RFC 7518 3.2: an HS256 key is at least as long as the hash.
		if len(secret) < minOctBytes {
			return k, fmt.Errorf("oct key of %d bytes; HS256 needs at least %d", len(secret), minOctBytes)
		}
		k.alg, k.pub = algHS256, secret
	default:
		return k, fmt.Errorf("kty %q is not supported (RSA, OKP or oct)", j.Kty)
	}
	if j.Alg != "" && j.Alg != k.alg {
		return k, fmt.Errorf("alg %q does not fit a %s key (%s)", j.Alg, j.Kty, k.alg)
	}
	return k, nil
}

// b64 decodes a base64url member without padding, as JWKs carry them.
func b64(s, name string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%s is missing", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s is not base64url: %v", name, err)
	}
	return b, nil
}

// methods are the algorithms the parser lets through to the key lookup.
var methods = []string{jwt.SigningMethodHS256.Alg(), jwt.SigningMethodRS256.Alg(), jwt.SigningMethodEdDSA.Alg()}
