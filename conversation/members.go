package conversation

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// Member keys, m.<conv>.<uid>, answer "is uid a member of conv?" with one
// small read, however large the group. They are written after a user is
// added to the document and deleted before a user is removed from it, so
// they never name someone the document does not: a removed user is refused
// from the moment remove_member is acknowledged.

func memberKey(conv, uid string) string { return "m." + conv + "." + uid }

var memberValue = []byte("1")

// IsMember reports whether uid is a member of conv. A conversation that
// does not exist has no members.
func (s *Store) IsMember(ctx context.Context, conv, uid string) (bool, error) {
	_, err := s.kv.Get(ctx, memberKey(conv, uid))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("membership %s/%s: %w", conv, uid, err)
	}
}

func (s *Store) memberAdd(ctx context.Context, conv string, users []string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelWrites)
	for _, u := range users {
		g.Go(func() error {
			if _, err := s.kv.Put(ctx, memberKey(conv, u), memberValue); err != nil {
				return fmt.Errorf("add member key %s/%s: %w", conv, u, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func (s *Store) memberRemove(ctx context.Context, conv, uid string) error {
	if err := s.kv.Delete(ctx, memberKey(conv, uid)); err != nil {
		return fmt.Errorf("remove member key %s/%s: %w", conv, uid, err)
	}
	return nil
}
