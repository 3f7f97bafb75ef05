package schema

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the push notification streams, buckets and consumers.
const (
	// BucketPush holds registered devices (d.<uid>) and mutes
	// (m.<uid>.<conv>).
	BucketPush = "PUSH"
	// BucketPushSent remembers which notifications were sent, per message
	// and device, so a restarted dispatcher does not notify twice.
	BucketPushSent = "PUSH_SENT"
	// StreamPushDead holds notifications that kept failing, on
	// chat.push.dead.<platform>, with the reason.
	StreamPushDead = "PUSH_DLQ"
	// ConsumerPush is the push dispatcher's durable consumer on CHAT.
	ConsumerPush = "pushnotify"
	// PriorityGroupPush is the pinned priority group of ConsumerPush: one
	// dispatcher at a time pulls, so windows coalesce in one place and
	// membership events are seen in stream order.
	PriorityGroupPush = "pushnotify"
)

const pushDeadPrefix = "chat.push.dead."

// PushDeadWildcard matches the dead letters of every platform.
const PushDeadWildcard = pushDeadPrefix + "*"

// PushDead is the subject of a dead-lettered notification for platform
// ("apns", "fcm", "webpush").
func PushDead(platform string) string { return pushDeadPrefix + platform }

// PushBucket is the PUSH KV bucket's configuration. A user's devices are
// one value changed with compare-and-set; MaxValueSize bounds it.
func PushBucket(c Config) jetstream.KeyValueConfig {
	c = c.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:       BucketPush,
		Description:  "Natter push: d.<uid> registered devices, m.<uid>.<conv> mutes",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: PushMaxValue,
	}
}

// PushMaxValue bounds a PUSH value. The largest is a user's device list:
// at most 20 devices (pushnotify.DefaultMaxDevices), each a token of at
// most 4 KiB (pushnotify.MaxTokenBytes) that JSON may escape to six times
// its size (\u0026 for &, as in an endpoint's query) plus about 100
// bytes of id, platform and time: under 500 KiB.
const PushMaxValue = 512 << 10

// PushSentBucket is the bucket pushnotify.KVDedup expects: keys expire
// after an hour, far beyond the consumer's redelivery horizon.
func PushSentBucket(c Config) jetstream.KeyValueConfig {
	c = c.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      BucketPushSent,
		Description: "push notifications sent, per message and device",
		TTL:         time.Hour,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}
}

// PushDeadStream is the dead-letter stream: notifications that failed
// for good, kept for a week for operators to inspect (bounded in size).
func PushDeadStream(c Config) jetstream.StreamConfig {
	c = c.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamPushDead,
		Description: "Natter push notifications that kept failing, with the reason",
		Subjects:    []string{PushDeadWildcard},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      7 * 24 * time.Hour,
		MaxBytes:    256 << 20,
		MaxMsgs:     -1,
		Discard:     jetstream.DiscardOld,
		Replicas:    c.Replicas,
	}
}

// PushConsumer is the push dispatcher's durable pull consumer. It reads
// membership events too, so member lists refresh in order with the
// messages. A message stays unacknowledged while its coalescing window is
// open and its notifications are sent, so AckWait is far above the window
// plus the retries; MaxAckPending bounds what the dispatcher holds.
func PushConsumer() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        ConsumerPush,
		Description:    "push notifications to offline members",
		FilterSubjects: []string{StoredWildcard},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        5 * time.Minute,
		MaxAckPending:  10_000,
		MaxWaiting:     64,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroupPush},
		PinnedTTL:      5 * time.Second,
	}
}
