package auth

import "errors"

var (
	// ErrInvalidToken covers every token that does not verify.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrNoKey is returned by New when neither a secret nor a key is given.
	ErrNoKey = errors.New("auth: no JWT secret or public key configured")
	// ErrBadJWKS is returned for a JWKS file that cannot be used as a whole.
	ErrBadJWKS = errors.New("auth: bad JWKS")
)
