package conversation

import (
	"fmt"

	"github.com/natter-chat/natter/protocol"
)

// Disappearing messages (docs/protocol.md "Disappearing messages"). A
// conversation's ttl (Doc.TTL, seconds) is a setting like a group's
// read-only: in a group the owner and admins change it, in a direct
// conversation either member does (both are its owners; there is nobody
// else to ask). The change is an ActionUpdated change with a
// ttl_changed item, so it is in the conversation's history and, being a
// stored membership event, refuses every send view kept from before it
// (view.go): the next send reads the view again and learns the new ttl.
// A message takes the ttl in force when it is sent (MemberView.TTL);
// changing the ttl does not change messages sent before.

// MessageTTL returns the ttl messages sent now get, in seconds, 0 for
// none: the shorter of the ttl and the retention (protocol.EffectiveTTL).
func (d *Doc) MessageTTL() int64 { return protocol.EffectiveTTL(d.TTL, d.RetentionDays) }

// checkTTL refuses a ttl that is neither off, one of protocol.TTLs nor
// the configured test value.
func (s *Store) checkTTL(ttl *int64) error {
	if ttl == nil || protocol.ValidTTL(*ttl, s.cfg.TestTTL) {
		return nil
	}
	allowed := fmt.Sprint(append([]int64{0}, protocol.TTLs...))
	if s.cfg.TestTTL > 0 {
		allowed += fmt.Sprintf(" or %d", s.cfg.TestTTL)
	}
	return fmt.Errorf("%w: ttl must be one of %s seconds", ErrBadRequest, allowed)
}
