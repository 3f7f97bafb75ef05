package conversation

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// IDs lists the id of every conversation (the c.<conv> documents of the
// CONVERSATIONS bucket), in no particular order: what a rebuild of the
// search index reads the history store by.
func IDs(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	kv, err := js.KeyValue(ctx, schema.BucketConversations)
	if err != nil {
		return nil, fmt.Errorf("conversation ids: %w", err)
	}
	l, err := kv.ListKeysFiltered(ctx, docKey("*"))
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("conversation ids: %w", err)
	}
	var out []string
	for k := range l.Keys() {
		out = append(out, k[len(docKey("")):])
	}
	return out, nil
}
