package attachments

import (
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Disappearing messages (docs/protocol.md "Disappearing messages"). An
// attachment first referenced by a message with expires_at records it,
// and from then on: Files hands out no URL of it, the URLs handed out
// before stop working at expires_at (they are signed to expire no
// later), and the sweep deletes its bytes, thumbnail and record, giving
// the bytes back to the owner's quota. An attachment referenced again in
// its conversation with another expiry (an edit takes its target's; a
// send whose ttl changed under it is stamped again) takes the latest.

// expired reports whether rec's message has disappeared.
func (s *Service) expired(rec record) bool {
	return rec.ExpiresAt != "" && protocol.Expired(rec.ExpiresAt, s.cfg.Now())
}

// getExpiry is how long a GET URL of rec is valid, and until when:
// GetExpiry, but no longer than its message lasts (at least a second:
// presigned URLs count in seconds).
func (s *Service) getExpiry(rec record) (time.Duration, time.Time) {
	now := s.cfg.Now()
	until := now.Add(s.cfg.GetExpiry)
	if t, ok := protocol.ParseExpiry(rec.ExpiresAt); ok && t.Before(until) {
		until = t
		if until.Before(now.Add(time.Second)) {
			until = now.Add(time.Second)
		}
	}
	return until.Sub(now), until
}
