package conversation

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
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
