// Package wire holds the HTTP details the push providers share: reading
// bounded error bodies, classifying transport failures and trimming text
// to the providers' size limits.
package wire

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/natter-chat/natter/pushnotify"
)

// MaxBody bounds how much of a provider's answer is read.
const MaxBody = 64 << 10

// ReadBody reads at most MaxBody bytes of r and drains nothing more; the
// caller closes r.
func ReadBody(r io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, MaxBody))
	return b
}

// TransportError classifies a failed round trip: the context's own end is
// returned as is (not retryable: the caller gave up), anything else is a
// network failure worth retrying.
func TransportError(ctx context.Context, provider string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", provider, err)
	}
	return pushnotify.Retryable(fmt.Errorf("%s: %w", provider, err), 0)
}

// StatusError classifies an HTTP failure that is not about the token:
// retryable for 429 and 5xx (with Retry-After), permanent otherwise.
func StatusError(provider string, resp *http.Response, reason string, now time.Time) error {
	se := &pushnotify.StatusError{Provider: provider, Status: resp.StatusCode, Reason: reason}
	if pushnotify.RetryableStatus(resp.StatusCode) {
		return pushnotify.Retryable(se, pushnotify.ParseRetryAfter(resp.Header.Get("Retry-After"), now))
	}
	return se
}

// InvalidToken wraps a provider's answer in pushnotify.ErrInvalidToken.
func InvalidToken(provider string, status int, reason string) error {
	return fmt.Errorf("%w: %w", pushnotify.ErrInvalidToken,
		&pushnotify.StatusError{Provider: provider, Status: status, Reason: reason})
}

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence,
// ending it with "…" when it was cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := max(n-len(ellipsis), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// Snippet returns the start of a body for error messages.
func Snippet(b []byte) string {
	return Truncate(string(b), 200)
}
