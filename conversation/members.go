package conversation

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Member keys, m.<conv>.<uid>, answer "is uid a member of conv?" with one
// small read, however large the group. They are written after a user is
// added to the document and deleted before a user is removed from it, and
// again after (repair.go: syncMembers), so once a change has returned they
// name exactly whom the document lists: a removed user is refused from the
// moment remove_member is acknowledged.

func memberKey(conv, uid string) string { return "m." + conv + "." + uid }

// Member key values: an accepted member, and one who has yet to accept a
// message request (Doc.Pending). The value lets the send path, which reads
// the key anyway, see a request without reading the document.
var (
	memberValue  = []byte("1")
	pendingValue = []byte("r")
)

// IsMember reports whether uid is a member of conv. A conversation that
// does not exist has no members.
func (s *Store) IsMember(ctx context.Context, conv, uid string) (bool, error) {
	_, _, err := s.getKey(ctx, memberKey(conv, uid))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("membership %s/%s: %w", conv, uid, err)
	}
}

// memberCreate writes uid's member key of conv and reports whether it
// was missing.
func (s *Store) memberCreate(ctx context.Context, conv, uid string, value []byte) (bool, error) {
	_, err := s.kv.Create(ctx, memberKey(conv, uid), value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("add member key %s/%s: %w", conv, uid, err)
	}
	return true, nil
}

func (s *Store) memberRemove(ctx context.Context, conv, uid string) error {
	if err := s.kv.Delete(ctx, memberKey(conv, uid)); err != nil {
		return fmt.Errorf("remove member key %s/%s: %w", conv, uid, err)
	}
	return nil
}
