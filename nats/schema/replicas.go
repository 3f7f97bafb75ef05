package schema

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// AutoReplicas is the replica count to ensure the schema with when none is
// configured: the CHAT stream's (or CHAT_0's) when it exists, so a role started without
// the setting never scales an existing schema down; else 3 when the
// connection knows of at least three servers (its URL list plus the client
// URLs the cluster gossips), else 1.
func AutoReplicas(ctx context.Context, js jetstream.JetStream) (int, error) {
	st, err := liveChat(ctx, js)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, _, err = streamsLayout(ctx, js)
	}
	switch {
	case err == nil:
		return st.CachedInfo().Config.Replicas, nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return 0, fmt.Errorf("look up stream %s: %w", StreamChat, err)
	}
	if nc := js.Conn(); nc != nil && len(nc.Servers()) >= 3 {
		return 3, nil
	}
	return 1, nil
}
