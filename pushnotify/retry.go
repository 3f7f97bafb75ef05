package pushnotify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy bounds Retry. The zero value is usable: 5 attempts, 500 ms base
// delay, 30 s cap, real sleeping and math/rand/v2 jitter.
type Policy struct {
	// MaxAttempts is the number of Send calls, the first included
	// (default 5).
	MaxAttempts int
	// BaseDelay is the backoff before the second attempt, doubled for each
	// attempt after it (default 500 ms).
	BaseDelay time.Duration
	// MaxDelay caps each wait (default 30 s). A Retry-After longer than
	// MaxDelay ends Retry at once with the RetryError, so the caller can
	// schedule the notification later instead of holding a worker.
	MaxDelay time.Duration
	// Rand returns a number in [0, 1) for the jitter; nil means
	// math/rand/v2.Float64.
	Rand func() float64
	// Sleep waits d or until ctx is done; nil means a timer. Tests inject
	// one that records the delays and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

// defaultPolicy holds what the zero fields of a Policy mean.
var defaultPolicy = Policy{MaxAttempts: 5, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second}

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = defaultPolicy.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = defaultPolicy.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = defaultPolicy.MaxDelay
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	return p
}

// Backoff returns the wait before attempt+1 (attempt counts from 1): a
// uniformly random duration in [0, min(MaxDelay, BaseDelay·2^(attempt-1))),
// the "full jitter" of the AWS architecture blog, which spreads retries of
// many senders hit by the same outage.
func (p Policy) Backoff(attempt int) time.Duration {
	p = p.withDefaults()
	ceiling := p.MaxDelay
	if shift := attempt - 1; shift < 32 {
		if d := p.BaseDelay << shift; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return time.Duration(p.Rand() * float64(ceiling))
}

// Retry sends n with s until it succeeds, fails with an error that is not
// ErrRetryable, the attempts run out or ctx is done. Between attempts it
// waits Policy.Backoff, or the provider's Retry-After when that is longer.
// The last error is returned, wrapped; it still matches ErrRetryable when
// the attempts ran out, so the caller can dead-letter or reschedule.
func Retry(ctx context.Context, s Sender, n *Notification, p Policy) error {
	p = p.withDefaults()
	for attempt := 1; ; attempt++ {
		err := s.Send(ctx, n)
		if err == nil || !errors.Is(err, ErrRetryable) {
			return err
		}
		if attempt >= p.MaxAttempts {
			return fmt.Errorf("pushnotify: gave up after %d attempts: %w", attempt, err)
		}
		wait := p.Backoff(attempt)
		var re *RetryError
		if errors.As(err, &re) && re.After > wait {
			if re.After > p.MaxDelay {
				return fmt.Errorf("pushnotify: provider asks to wait %s, more than %s: %w", re.After, p.MaxDelay, err)
			}
			wait = re.After
		}
		if serr := p.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("pushnotify: retry interrupted: %w; last attempt: %w", serr, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
