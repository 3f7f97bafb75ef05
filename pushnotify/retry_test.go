package pushnotify_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/natter-chat/natter/pushnotify"
)

// scriptedSender answers Send with the scripted errors in turn, then nil.
type scriptedSender struct {
	errs  []error
	calls int
}

func (s *scriptedSender) Send(ctx context.Context, n *pushnotify.Notification) error {
	s.calls++
	if s.calls <= len(s.errs) {
		return s.errs[s.calls-1]
	}
	return nil
}

func TestRetry(t *testing.T) {
	unavailable := &pushnotify.StatusError{Provider: "test", Status: 503}
	retryable := pushnotify.Retryable(unavailable, 0)
	permanent := &pushnotify.StatusError{Provider: "test", Status: 400, Reason: "BadPayload"}
	invalid := fmt.Errorf("test: %w", pushnotify.ErrInvalidToken)

	tests := []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   error // nil: success
		wantWaits []time.Duration
	}{
		{name: "success", wantCalls: 1},
		{name: "permanent is not retried", errs: []error{permanent}, wantCalls: 1, wantErr: permanent},
		{name: "invalid token is not retried", errs: []error{invalid}, wantCalls: 1, wantErr: pushnotify.ErrInvalidToken},
		{
			name:      "retryable then success, full jitter backoff",
			errs:      []error{retryable, retryable, retryable},
			wantCalls: 4,
			// Rand returns 0.5: half of 100ms, 200ms, 400ms.
			wantWaits: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
		},
		{
			name:      "attempts run out",
			errs:      []error{retryable, retryable, retryable, retryable, retryable},
			wantCalls: 4, wantErr: pushnotify.ErrRetryable,
			wantWaits: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
		},
		{
			name:      "Retry-After is honoured when longer",
			errs:      []error{pushnotify.Retryable(unavailable, 3*time.Second), pushnotify.Retryable(unavailable, time.Millisecond)},
			wantCalls: 3,
			wantWaits: []time.Duration{3 * time.Second, 100 * time.Millisecond},
		},
		{
			name:      "Retry-After beyond MaxDelay is handed back",
			errs:      []error{pushnotify.Retryable(unavailable, time.Hour)},
			wantCalls: 1, wantErr: pushnotify.ErrRetryable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scriptedSender{errs: tt.errs}
			var waits []time.Duration
			p := pushnotify.Policy{
				MaxAttempts: 4,
				BaseDelay:   100 * time.Millisecond,
				MaxDelay:    5 * time.Second,
				Rand:        func() float64 { return 0.5 },
				Sleep: func(ctx context.Context, d time.Duration) error {
					waits = append(waits, d)
					return nil
				},
			}
			err := pushnotify.Retry(t.Context(), s, &pushnotify.Notification{}, p)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Retry: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Retry error %v, want one matching %v", err, tt.wantErr)
			}
			if s.calls != tt.wantCalls {
				t.Errorf("Send called %d times, want %d", s.calls, tt.wantCalls)
			}
			if fmt.Sprint(waits) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits %v, want %v", waits, tt.wantWaits)
			}
		})
	}
}

func TestBackoffCeiling(t *testing.T) {
	p := pushnotify.Policy{BaseDelay: time.Second, MaxDelay: 10 * time.Second, Rand: func() float64 { return 0.999999 }}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 80: 10 * time.Second} {
		if got := p.Backoff(attempt); got > want || got < want*99/100 {
			t.Errorf("Backoff(%d) = %s, want just under %s", attempt, got, want)
		}
	}
	p.Rand = func() float64 { return 0 }
	if got := p.Backoff(3); got != 0 {
		t.Errorf("Backoff with Rand 0 = %s, want 0 (full jitter)", got)
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s := &scriptedSender{errs: []error{pushnotify.Retryable(errors.New("down"), 0)}}
	p := pushnotify.Policy{Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}}
	err := pushnotify.Retry(ctx, s, &pushnotify.Notification{}, p)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, pushnotify.ErrRetryable) {
		t.Fatalf("Retry = %v, want context.Canceled and the last retryable error", err)
	}
	if s.calls != 1 {
		t.Errorf("Send called %d times, want 1", s.calls)
	}
}

func TestRetryRealSleep(t *testing.T) {
	s := &scriptedSender{errs: []error{pushnotify.Retryable(errors.New("down"), 0)}}
	p := pushnotify.Policy{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	if err := pushnotify.Retry(t.Context(), s, &pushnotify.Notification{}, p); err != nil {
		t.Fatalf("Retry: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"0":                             0,
		"-3":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:35 GMT": 30 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
	}
	for in, want := range tests {
		if got := pushnotify.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRetryErrorMatching(t *testing.T) {
	base := &pushnotify.StatusError{Provider: "fcm", Status: 429, Reason: "QUOTA_EXCEEDED"}
	err := fmt.Errorf("send: %w", pushnotify.Retryable(base, 2*time.Second))
	var re *pushnotify.RetryError
	if !errors.Is(err, pushnotify.ErrRetryable) || !errors.As(err, &re) || re.After != 2*time.Second {
		t.Fatalf("%v does not carry a RetryError of 2s", err)
	}
	var se *pushnotify.StatusError
	if !errors.As(err, &se) || se.Status != 429 {
		t.Fatalf("%v does not unwrap to the StatusError", err)
	}
	if errors.Is(base, pushnotify.ErrRetryable) {
		t.Fatal("a bare StatusError matches ErrRetryable")
	}
}
