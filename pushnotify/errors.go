package pushnotify

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ErrInvalidToken means the provider says the device token or subscription
// is gone for good: remove the device, do not retry.
var ErrInvalidToken = errors.New("pushnotify: invalid device token")

// ErrRetryable marks a failure that may succeed later (throttling, a
// provider outage, a network error). Errors that match it with errors.Is
// are *RetryError values.
var ErrRetryable = errors.New("pushnotify: retryable failure")

// ErrStopped is returned by Coalescer.Add after Stop.
var ErrStopped = errors.New("pushnotify: stopped")

// RetryError is a retryable failure. errors.Is(err, ErrRetryable) is true for
// it, and it unwraps to the underlying error.
type RetryError struct {
	// After is how long the provider asked us to wait (Retry-After); 0 when
	// it did not say.
	After time.Duration
	// Err is the underlying failure.
	Err error
}

// Error implements error.
func (e *RetryError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("retryable after %s: %v", e.After, e.Err)
	}
	return fmt.Sprintf("retryable: %v", e.Err)
}

// Unwrap returns the underlying error.
func (e *RetryError) Unwrap() error { return e.Err }

// Is reports whether target is ErrRetryable.
func (e *RetryError) Is(target error) bool { return target == ErrRetryable }

// StatusError is a provider's HTTP answer other than success. Providers wrap
// it in ErrInvalidToken or a RetryError, or return it as is when the
// failure is permanent.
type StatusError struct {
	// Provider is "apns", "fcm" or "webpush".
	Provider string
	// Status is the HTTP status code.
	Status int
	// Reason is the provider's error code (APNs reason, FCM errorCode or
	// status), or the start of the body when there is none.
	Reason string
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Provider, e.Status)
	}
	return fmt.Sprintf("%s: HTTP %d %s", e.Provider, e.Status, e.Reason)
}

// ParseRetryAfter reads a Retry-After header value, either delay-seconds or
// an HTTP date (RFC 9110 10.2.3), relative to now. It returns 0 when the
// value is missing, malformed or in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Retryable wraps err in a *RetryError waiting after.
func Retryable(err error, after time.Duration) error {
	return &RetryError{After: after, Err: err}
}

// RetryableStatus reports whether an HTTP status is worth retrying:
// 429 and every 5xx.
func RetryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}
