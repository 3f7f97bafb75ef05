package schema

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Streams lists the configuration of every stream of the schema, besides
// the buckets' own streams, in the order they are ensured: the message
// streams of c's layout (ChatStreamConfigs) first.
func Streams(c Config) []jetstream.StreamConfig {
	return append(ChatStreamConfigs(c, c.layout), DeadStream(c), PushDeadStream(c), ServiceEventsStream(c), WebhookDeadStream(c))
}

// BucketConfigs lists the configuration of every KV bucket of the schema.
func BucketConfigs(c Config) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{ConversationsBucket(c), PresenceBucket(c), LeasesBucket(c), PushBucket(c), PushSentBucket(c), ServicesBucket(c), AttachmentsBucket(c)}
}

// Consumers lists the durable consumers on message stream stream of
// layout l: on CHAT every fan-out partition's, on a partition stream its
// own; and on each the history writer's, pushnotify's, the events
// writer's and the indexer's.
func Consumers(l Layout, stream string) []jetstream.ConsumerConfig {
	cs := []jetstream.ConsumerConfig{HistoryConsumer(), PushConsumer(), ServiceEventsWriterConsumer(), SearchConsumer()}
	if l.Split() {
		for p, s := range l.ChatStreams() {
			if s == stream {
				cs = append(cs, FanoutPartitionConsumer(p))
			}
		}
		return cs
	}
	cs = append(cs, FanoutConsumer())
	for p := range l.Partitions {
		cs = append(cs, FanoutPartitionConsumer(p))
	}
	return cs
}

// Ensure creates or updates every stream, bucket and consumer to c. It is
// idempotent, and it is the operator's step: only the processes that own
// the stream settings and hold the operator's credentials (natter serve's
// embedded server, natter nats, natter migrate --nats-url) call it, so a
// role started with other flags never changes them; a role's NATS user
// may not create or update anything (RolePermissions), and roles only
// Check that what they use exists.
//
// A CHAT stream made before partitions is partitioned here (layoutFor):
// what it holds keeps its subjects and its consumer (FanoutConsumer), new
// messages are stored partitioned.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	if err := c.Regions.check(); err != nil {
		return err
	}
	l, err := layoutFor(ctx, js, c)
	if err != nil {
		return err
	}
	c.layout = l
	for _, sc := range Streams(c) {
		sc.Placement = c.placement(sc.Name)
		if sc.Name == StreamChat {
			// A CHAT made before erasure (issue 16) denies deletes, which
			// no update can undo: it keeps denying them, and the eraser
			// leaves erased messages to the retention trimmer there
			// (services/erase, docs/operations.md).
			if old, err := js.Stream(ctx, StreamChat); err == nil && old.CachedInfo().Config.DenyDelete {
				sc.DenyDelete = true
			}
		}
		st, err := js.CreateOrUpdateStream(ctx, sc)
		if err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
		if sc.Name != StreamChat || !l.Legacy {
			continue
		}
		// Partitioned now: no message can be stored unpartitioned any
		// more, so if none is, the stream needs no fallback lookups.
		if legacy, err := hasLegacy(ctx, st); err != nil {
			return err
		} else if !legacy {
			c.layout.Legacy = false
			cfg := ChatStream(c)
			cfg.DenyDelete = sc.DenyDelete
			cfg.Placement = sc.Placement
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
			}
		}
	}
	for _, kc := range BucketConfigs(c) {
		kc.Placement = c.placement(KVStream(kc.Bucket))
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("ensure bucket %s: %w", kc.Bucket, err)
		}
	}
	for _, stream := range c.layout.ChatStreams() {
		for _, cc := range Consumers(c.layout, stream) {
			if _, err := js.CreateOrUpdateConsumer(ctx, stream, cc); err != nil {
				return fmt.Errorf("ensure consumer %s on %s: %w", cc.Durable, stream, err)
			}
		}
	}
	return nil
}
