package protocol

import (
	"slices"
	"strconv"
	"time"
)

// Disappearing messages (docs/protocol.md "Disappearing messages"). A
// conversation's ttl is a number of seconds: 0 (off) or one of TTLs. A
// message sent while it is set carries expires_at, its ts plus the ttl,
// and is gone everywhere from then on.

// TTLs are the ttl values a client may set, in seconds: 1 hour, 1 day,
// 7 days and 90 days. A server may allow one more, short value for tests
// (conversation.Config.TestTTL).
var TTLs = []int64{3600, 86400, 7 * 86400, 90 * 86400}

// EventTTL is the GroupEvent of a ttl change (its ttl field: the new
// value, 0 for off).
const EventTTL = "ttl_changed"

// Retention: a conversation may keep its messages only so many days
// (retention_days, 1 to MaxRetentionDays; 0 keeps them for ever). It is
// enforced like the ttl: a message sent under retention N carries
// expires_at = ts + N days (the earlier of that and the ttl's).
// Messages sent before it was set keep the expiry they were sent with.
const (
	EventRetention   = "retention_changed"
	MaxRetentionDays = 3650
)

// ValidRetention reports whether days is a retention a client may set.
func ValidRetention(days int64) bool { return days >= 0 && days <= MaxRetentionDays }

// EffectiveTTL is the ttl in seconds a message sent now gets from a
// conversation's ttl (seconds) and retention (days): the shorter of the
// two that are set, 0 when neither is.
func EffectiveTTL(ttl, retentionDays int64) int64 {
	r := retentionDays * 86400
	switch {
	case r == 0:
		return ttl
	case ttl == 0:
		return r
	}
	return min(ttl, r)
}

// ValidTTL reports whether ttl seconds is off, one of TTLs or extra (a
// server's test value, 0 for none).
func ValidTTL(ttl, extra int64) bool {
	return ttl == 0 || (extra > 0 && ttl == extra) || slices.Contains(TTLs, ttl)
}

// ExpiresAt is the expires_at of an item sent at now under ttl seconds
// (0: none, ""), bounded by the expiry of what it refers to (limit, ""
// for none): an edit, delete, reaction or reply never outlives its
// target or the message it quotes, or it would keep what disappeared.
func ExpiresAt(now time.Time, ttl int64, limit string) string {
	var at time.Time
	if ttl > 0 {
		at = now.Add(time.Duration(ttl) * time.Second)
	}
	if l, ok := ParseExpiry(limit); ok && (at.IsZero() || l.Before(at)) {
		at = l
	}
	if at.IsZero() {
		return ""
	}
	return FormatTime(at)
}

// ParseExpiry parses an expires_at; ok is false for "" (no expiry). An
// expires_at that does not parse counts as expired long ago: the server
// writes only valid ones, and hiding a damaged one errs on the side of
// disappearing.
func ParseExpiry(expiresAt string) (time.Time, bool) {
	if expiresAt == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, expiresAt)
	if err != nil {
		return time.Unix(0, 0), true
	}
	return t, true
}

// Expired reports whether an item with expiresAt is gone at now.
func Expired(expiresAt string, now time.Time) bool {
	t, ok := ParseExpiry(expiresAt)
	return ok && !now.Before(t)
}

// Expired reports whether m is gone at now.
func (m *Message) Expired(now time.Time) bool { return Expired(m.ExpiresAt, now) }

// Expired reports whether e is gone at now.
func (e *Envelope) Expired(now time.Time) bool { return Expired(e.ExpiresAt, now) }

// TTLHeader is the value of the Nats-TTL header of an item that expires
// at expiresAt, stored at now: whole seconds, rounded up so the stream
// never drops it before expires_at, at least 1 (JetStream's minimum).
// ok is false for an item without expiry.
func TTLHeader(expiresAt string, now time.Time) (string, bool) {
	t, ok := ParseExpiry(expiresAt)
	if !ok {
		return "", false
	}
	d := t.Sub(now)
	secs := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(secs, 1), 10), true
}

// FilterExpired removes the items of page expired at now, in place.
func FilterExpired(page []*Message, now time.Time) []*Message {
	return slices.DeleteFunc(page, func(m *Message) bool { return m.ExpiresAt != "" && m.Expired(now) })
}

// AppendExpiresAt appends ,"expires_at" when expiresAt is set: after the
// reply fields and before the body, the order of Message's and
// Envelope's fields.
func AppendExpiresAt(dst []byte, expiresAt string) []byte {
	if expiresAt == "" {
		return dst
	}
	dst = append(dst, `,"expires_at":`...)
	return appendJSONString(dst, expiresAt)
}

// Earlier returns the earlier of two expires_at values, "" meaning
// never.
func Earlier(a, b string) string {
	ta, oka := ParseExpiry(a)
	tb, okb := ParseExpiry(b)
	switch {
	case !oka:
		return b
	case !okb:
		return a
	case tb.Before(ta):
		return b
	}
	return a
}
