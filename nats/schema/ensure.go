package schema

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Streams lists the configuration of every stream of the schema, besides
// the buckets' own streams, in the order they are ensured.
func Streams(c Config) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{ChatStream(c), DeadStream(c), PushDeadStream(c)}
}

// BucketConfigs lists the configuration of every KV bucket of the schema.
func BucketConfigs(c Config) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{ConversationsBucket(c), PresenceBucket(c), LeasesBucket(c), PushBucket(c), PushSentBucket(c)}
}

// Consumers lists the durable consumers on the CHAT stream.
func Consumers() []jetstream.ConsumerConfig {
	return []jetstream.ConsumerConfig{FanoutConsumer(), HistoryConsumer(), PushConsumer()}
}

// Ensure creates or updates every stream, bucket and consumer to c. It is
// idempotent, and it is the operator's step: only the processes that own
// the stream settings (natter serve's embedded server, natter nats) call
// it, so a role started with other flags never changes them. Roles call
// CreateMissing.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	return apply(ctx, js, c, true)
}

// CreateMissing creates the streams, buckets and consumers that do not
// exist yet, with c, and leaves every existing one exactly as it is. It is
// what a role does at start: it may fill in a fresh NATS (when its user is
// allowed to), but never shrinks the hot window or changes any other
// setting the operator chose.
func CreateMissing(ctx context.Context, js jetstream.JetStream, c Config) error {
	return apply(ctx, js, c, false)
}

func apply(ctx context.Context, js jetstream.JetStream, c Config, update bool) error {
	for _, sc := range Streams(c) {
		if err := ensureStream(ctx, js, sc, update); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range BucketConfigs(c) {
		if err := ensureBucket(ctx, js, kc, update); err != nil {
			return fmt.Errorf("ensure bucket %s: %w", kc.Bucket, err)
		}
	}
	for _, cc := range Consumers() {
		if err := ensureConsumer(ctx, js, StreamChat, cc, update); err != nil {
			return fmt.Errorf("ensure consumer %s: %w", cc.Durable, err)
		}
	}
	return nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig, update bool) error {
	if update {
		_, err := js.CreateOrUpdateStream(ctx, sc)
		return err
	}
	_, err := js.Stream(ctx, sc.Name)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	// Another process may create it meanwhile, with other settings: theirs
	// stay.
	if _, err = js.CreateStream(ctx, sc); errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil
	}
	return err
}

func ensureBucket(ctx context.Context, js jetstream.JetStream, kc jetstream.KeyValueConfig, update bool) error {
	if update {
		_, err := js.CreateOrUpdateKeyValue(ctx, kc)
		return err
	}
	_, err := js.KeyValue(ctx, kc.Bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return err
	}
	if _, err = js.CreateKeyValue(ctx, kc); errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil
	}
	return err
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cc jetstream.ConsumerConfig, update bool) error {
	if update {
		_, err := js.CreateOrUpdateConsumer(ctx, stream, cc)
		return err
	}
	_, err := js.Consumer(ctx, stream, cc.Durable)
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	if _, err = js.CreateConsumer(ctx, stream, cc); errors.Is(err, jetstream.ErrConsumerExists) {
		return nil
	}
	return err
}
