package pushtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// VerifyJWT checks, as written from RFCs 7515 and 7518 rather than with
// the JWT library the code under test uses, the signature of a compact JWS with pub (*ecdsa.PublicKey
// for ES256, *rsa.PublicKey for RS256) and returns its header and claims.
func VerifyJWT(token string, pub crypto.PublicKey) (header, claims map[string]any, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("JWT has %d parts, want 3", len(parts))
	}
	raw := make([][]byte, 3)
	for i, p := range parts {
		if raw[i], err = base64.RawURLEncoding.DecodeString(p); err != nil {
			return nil, nil, fmt.Errorf("JWT part %d: %w", i, err)
		}
	}
	if err := json.Unmarshal(raw[0], &header); err != nil {
		return nil, nil, fmt.Errorf("JWT header: %w", err)
	}
	if err := json.Unmarshal(raw[1], &claims); err != nil {
		return nil, nil, fmt.Errorf("JWT claims: %w", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	sig := raw[2]
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if header["alg"] != "ES256" {
			return nil, nil, fmt.Errorf("alg %v, want ES256", header["alg"])
		}
		// RFC 7518 3.4: R and S as 32-byte big-endian, concatenated.
		if len(sig) != 64 {
			return nil, nil, fmt.Errorf("ES256 signature of %d bytes, want 64", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, digest[:], r, s) {
			return nil, nil, fmt.Errorf("ES256 signature does not verify")
		}
	case *rsa.PublicKey:
		if header["alg"] != "RS256" {
			return nil, nil, fmt.Errorf("alg %v, want RS256", header["alg"])
		}
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig); err != nil {
			return nil, nil, fmt.Errorf("RS256 signature: %w", err)
		}
	default:
		return nil, nil, fmt.Errorf("unsupported key %T", pub)
	}
	return header, claims, nil
}

// NumericClaim returns a NumericDate claim as Unix seconds.
func NumericClaim(claims map[string]any, name string) (int64, bool) {
	f, ok := claims[name].(float64)
	return int64(f), ok
}
