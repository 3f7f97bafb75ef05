package conversation

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/protocol"
)

// ErasedKey is the key of uid's erasure record (services/erase): while it
// exists, uid cannot log in.
func ErasedKey(uid string) string { return "x." + uid }

// ReadKey and DeliveredKey are the keys of uid's markers of conv, for the
// eraser.
func ReadKey(conv, uid string) string      { return readKey(conv, uid) }
func DeliveredKey(conv, uid string) string { return deliveredKey(conv, uid) }

// Erased reports whether uid was erased (or is being erased).
func (s *Store) Erased(ctx context.Context, uid string) (bool, error) {
	_, err := s.kv.Get(ctx, ErasedKey(uid))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("erasure record of %s: %w", uid, err)
	}
	return true, nil
}

// MarkErased records in the direct conversation conv that uid's account
// was erased (services/erase). A direct conversation has exactly two
// members, so uid is not removed: the other member keeps the
// conversation and its history (uid's messages erased), sees uid as a
// deleted account (Doc.Erased, the conversation object's "erased") and
// can no longer send in it (MayPost), nor can anyone. The change is an
// updated event with an account_deleted item, like a group's settings,
// so every send view kept from before it is refused. Marking again
// changes nothing.
func (s *Store) MarkErased(ctx context.Context, conv, uid string) (*Doc, error) {
	d, rev, err := s.update(ctx, conv, func(d *Doc) error {
		switch {
		case d.Kind != protocol.ConversationDirect:
			return fmt.Errorf("%w: only a direct conversation keeps an erased member", ErrBadRequest)
		case slices.Contains(d.Erased, uid):
			return errNoChange
		case !slices.Contains(d.Members, uid) && !slices.Contains(d.Declined, uid):
			return fmt.Errorf("%w: %s is not in %s", ErrBadRequest, uid, conv)
		}
		d.Erased = append(d.Erased, uid)
		d.Change = &Event{Action: ActionUpdated, By: uid,
			Items: []protocol.GroupEvent{{Event: protocol.EventAccountDeleted, By: uid, User: uid}}}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return d, s.finish(ctx, d, rev)
	}
	if err != nil {
		return nil, err
	}
	return d, s.complete(ctx, d, rev)
}
