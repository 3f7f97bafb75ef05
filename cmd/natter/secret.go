package main

import (
	"errors"
	"fmt"
	"strings"
)

// minSecretBytes is the shortest HS256 secret a server accepts outside
// --dev: 256 bits, the size of the HMAC-SHA256 output (RFC 7518 §3.2).
const minSecretBytes = 32

// placeholderWords are the words shipped examples and tutorials use for a
// secret. A secret made only of them (in any case, repeated, with digits
// or punctuation between) is guessable however long it is.
var placeholderWords = []string{
	"changeme", "change", "me", "secret", "password", "passwd", "pass", "natter",
	"test", "testing", "example", "default", "jwt", "key", "token", "replace",
	"replacewith", "with", "your", "here", "dev", "demo", "sample", "dummy",
	"placeholder", "insecure", "todo", "fixme", "chars", "base", "hs", "hmac",
	"my", "the", "bit", "foo", "bar", "abc", "qwerty", "letmein", "admin", "xxx",
}

// errWeakSecret says why a secret is refused; the message names the fix.
var errWeakSecret = errors.New("JWT secret refused")

// checkSecret refuses an HS256 secret an attacker could guess or brute
// force: shorter than minSecretBytes, a known placeholder, or fewer than 8
// distinct bytes (e.g. "0000…"). Outside --dev a server with such a
// secret would accept tokens forged by anyone who read the docs.
func checkSecret(s string) error {
	const fix = "generate one with `openssl rand -base64 48` into NATTER_JWT_SECRET (or use --dev)"
	if len(s) < minSecretBytes {
		return fmt.Errorf("%w: it is %d bytes, at least %d are needed; %s", errWeakSecret, len(s), minSecretBytes, fix)
	}
	if isPlaceholder(s) {
		return fmt.Errorf("%w: it is a placeholder, not a secret; %s", errWeakSecret, fix)
	}
	distinct := map[byte]bool{}
	for i := 0; i < len(s); i++ {
		distinct[s[i]] = true
	}
	if len(distinct) < 8 {
		return fmt.Errorf("%w: it has only %d distinct characters; %s", errWeakSecret, len(distinct), fix)
	}
	return nil
}

// isPlaceholder reports whether the letters of s, lower-cased, split
// entirely into placeholderWords: "change-me", "CHANGEME_changeme_123",
// "secretsecretsecret…" are; random base64 is not.
func isPlaceholder(s string) bool {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' {
			b.WriteRune(r)
		}
	}
	letters := b.String()
	if letters == "" {
		return true
	}
	// ok[i]: letters[:i] splits into words.
	ok := make([]bool, len(letters)+1)
	ok[0] = true
	for i := 1; i <= len(letters); i++ {
		for _, w := range placeholderWords {
			if len(w) <= i && ok[i-len(w)] && letters[i-len(w):i] == w {
				ok[i] = true
				break
			}
		}
	}
	return ok[len(letters)]
}
