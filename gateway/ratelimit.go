package gateway

import "time"

// bucket is a token bucket: burst tokens at most, refilled at rate per
// second. It belongs to one session and is used from its read loop only,
// so it needs no lock.
type bucket struct {
	tokens float64
	burst  float64
	rate   float64
	last   time.Time
	// denied counts requests refused since the last one allowed.
	denied int
}

func newBucket(burst int, rate float64, now time.Time) bucket {
	return bucket{tokens: float64(burst), burst: float64(burst), rate: rate, last: now}
}

// allow takes a token if there is one.
func (b *bucket) allow(now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.burst, b.tokens+el*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		b.denied = 0
		return true
	}
	b.denied++
	return false
}
