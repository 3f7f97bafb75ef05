package schema

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the streams, buckets and consumers.
const (
	// StreamChat holds every message and membership event: the hot window,
	// and beyond it whatever the history store does not have yet.
	StreamChat = "CHAT"
	// BucketConversations holds conversation documents, per-user indexes
	// and read markers.
	BucketConversations = "CONVERSATIONS"
	// BucketPresence holds connections, gateway leases and user presence.
	BucketPresence = "PRESENCE"
	// StreamDead holds stored messages that could not be processed (bad
	// envelopes, unknown conversations) with the reason, for operators.
	StreamDead = "DEAD"
	// ConsumerFanout turns stored messages into deliveries to users: the
	// consumer of an unpartitioned stream's messages, and on a partitioned
	// one of those stored before it was partitioned. Each partition has
	// its own, ConsumerFanoutPartition.
	ConsumerFanout = "fanout"
	// PriorityGroupFanout is the pinned priority group of every fan-out
	// consumer: one worker at a time pulls each, so deliveries keep stream
	// order within it.
	PriorityGroupFanout = "fanout"
	// ConsumerHistory copies messages into the history store; its ack floor
	// is the stream seq up to which the store has everything.
	ConsumerHistory = "history"
	// PriorityGroupHistory is the pinned priority group of ConsumerHistory:
	// one writer at a time, in stream order.
	PriorityGroupHistory = "history"
)

// Config sizes the schema. The zero value is filled with the defaults.
type Config struct {
	// HotWindow is how long messages stay in the CHAT stream at least. It
	// is not the stream's MaxAge: the stream has none, and the retention
	// trimmer (nats/retention) removes a message only once it is older
	// than the window and the history store has it. ChatStream records it
	// in the stream's metadata (MetaHotWindow), where the trimmers read it.
	HotWindow time.Duration
	// Duplicates is the de-duplication window of sends (the operator's
	// --dedupe-window, 10 minutes by default): a retried send within it
	// gets the original seq. JetStream itself remembers Nats-Msg-Ids only
	// for FastDuplicates of it; a client's resend (marked "resend") is
	// looked up in the stream over the whole window by the gateway, which
	// reads it from the stream's metadata (MetaDedupeWindow).
	Duplicates time.Duration
	// FastDuplicates is the CHAT stream's own Duplicates: how long
	// JetStream keeps each Nats-Msg-Id in memory (about 160 B per message,
	// docs/benchmarks.md), so that any repeat within it, marked or not,
	// is answered with the original seq at no extra cost. Default 2
	// minutes, never above Duplicates.
	FastDuplicates time.Duration
	// Replicas of every stream and bucket: 1 on one node, 3 in a cluster.
	Replicas int
	// MaxConsumers of the CHAT stream, set explicitly since the server's
	// default is 1,000.
	MaxConsumers int
	// MaxMsgSize of a stored message: a 64 KiB body plus envelope.
	MaxMsgSize int32
	// MaxConversationDoc bounds one conversation document (its member list).
	MaxConversationDoc int32
	// Partitions is N, the number of fan-out partitions of the CHAT stream
	// (see Layout). 0 keeps what the stream has, or DefaultPartitions for a
	// new stream or one made before partitions. Changing it on a
	// partitioned stream is refused (ErrRepartition).
	Partitions int
	// Streams is the number of message streams (streams.go): 0 keeps what
	// the schema has, 1 for a new one (the one CHAT stream); N > 1 makes
	// CHAT_0 … CHAT_{N-1}, one partition each (Partitions must then be 0
	// or N), and needs the account's subject mapping (Mappings) on every
	// NATS server. Changing it is refused (ErrRepartition).
	Streams int
	// Regions places the streams and buckets in the regions of a
	// supercluster (regions.go); the zero value places nothing.
	Regions Regions

	// layout is what Ensure decided for the stream (layoutFor).
	layout Layout
}

func (c Config) withDefaults() Config {
	if c.HotWindow <= 0 {
		c.HotWindow = 7 * 24 * time.Hour
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 10 * time.Minute
	}
	if c.Duplicates > c.HotWindow {
		c.Duplicates = c.HotWindow
	}
	if c.FastDuplicates <= 0 {
		// The whole window in JetStream by default: the contract (any
		// repeat within the window, marked or not) holds for every client.
		c.FastDuplicates = c.Duplicates
	}
	c.FastDuplicates = min(c.FastDuplicates, c.Duplicates)
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxConsumers <= 0 {
		c.MaxConsumers = 10_000
	}
	if c.MaxMsgSize <= 0 {
		c.MaxMsgSize = 96 << 10
	}
	if c.MaxConversationDoc <= 0 {
		c.MaxConversationDoc = 2 << 20
	}
	return c
}

// MetaHotWindow is the CHAT stream's metadata key holding the hot window
// (a Go duration, "168h0m0s"): the one place the trimmers of every
// operator process read it from, written only by whoever ensures the
// schema (natter serve, natter nats).
const MetaHotWindow = "natter.hot_window"

// MetaDedupeWindow is the CHAT stream's metadata key holding the
// de-duplication window of sends (Config.Duplicates, a Go duration),
// where the gateways read it: the stream's own Duplicates is only its
// fast part (Config.FastDuplicates).
const MetaDedupeWindow = "natter.dedupe_window"

// ChatStream is the CHAT stream's configuration. It has no MaxAge and no
// size limit that discards: nothing leaves the stream by age alone, so a
// history store that is down longer than the hot window loses nothing.
// The retention trimmer purges what the store has and is older than
// c.HotWindow (kept in the metadata).
//
// It allows deleting single messages (no DenyDelete): only the eraser's
// user may (erase.go, STREAM.MSG.DELETE.CHAT), to erase a user.
//
// Its subject transform partitions it (see Layout): N and whether it still
// holds unpartitioned messages are in the metadata too (MetaPartitions,
// MetaLegacy).
func ChatStream(c Config) jetstream.StreamConfig {
	c = c.withDefaults()
	l := c.layout
	if l.Partitions <= 0 {
		l = Layout{Partitions: cmp(c.Partitions, DefaultPartitions)}
	}
	meta := map[string]string{MetaHotWindow: c.HotWindow.String(), MetaDedupeWindow: c.Duplicates.String(), MetaPartitions: strconv.Itoa(l.Partitions)}
	if l.Legacy {
		meta[MetaLegacy] = "true"
	}
	return jetstream.StreamConfig{
		Name:             StreamChat,
		Description:      "Natter messages and membership events (the hot window, and what the history store lacks)",
		Subjects:         []string{MsgWildcard, MemberWildcard},
		SubjectTransform: transform(l.Partitions),
		Retention:        jetstream.LimitsPolicy,
		Storage:          jetstream.FileStorage,
		Metadata:         meta,
		Duplicates:       c.FastDuplicates,
		AllowDirect:      true,
		// Disappearing messages carry Nats-TTL (HeaderTTL). An existing
		// stream without it is updated by Ensure: JetStream allows
		// turning it on (never off again).
		AllowMsgTTL:  true,
		MaxMsgSize:   c.MaxMsgSize,
		MaxConsumers: c.MaxConsumers,
		Replicas:     c.Replicas,
		Discard:      jetstream.DiscardOld,
		MaxMsgs:      -1,
		MaxBytes:     -1,
	}
}

// ConversationsBucket is the CONVERSATIONS KV bucket's configuration.
func ConversationsBucket(c Config) jetstream.KeyValueConfig {
	c = c.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:       BucketConversations,
		Description:  "Natter conversation documents (c.<conv>) and user indexes (u.<uid>)",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: c.MaxConversationDoc,
	}
}

// DeadStream is the DEAD stream's configuration.
func DeadStream(c Config) jetstream.StreamConfig {
	c = c.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamDead,
		Description: "messages of CHAT that could not be processed, with Natter-Reason",
		Subjects:    []string{DeadWildcard},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      7 * 24 * time.Hour,
		MaxBytes:    1 << 30,
		Discard:     jetstream.DiscardOld,
		Duplicates:  10 * time.Minute,
		Replicas:    c.Replicas,
	}
}

// PresenceBucket is the PRESENCE KV bucket's configuration. Keys have no
// bucket-wide TTL: gateway leases carry their own per-message TTL, and
// LimitMarkerTTL leaves a marker when one expires, which the presence
// service's watcher sees as a purge. Closed connections are purged with a
// marker of the same TTL, so the bucket keeps no tombstone per connection.
// MaxValueSize bounds what a client can make the server store per key.
func PresenceBucket(c Config) jetstream.KeyValueConfig {
	c = c.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:         BucketPresence,
		Description:    "Natter presence: c.<uid>.<gateway>.<session> connections, g.<gateway> leases, u.<uid> user state",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       c.Replicas,
		LimitMarkerTTL: time.Minute,
		MaxValueSize:   PresenceMaxValue,
	}
}

// PresenceMaxValue bounds a PRESENCE value. The largest is a connection's:
// its device label (at most 128 bytes, from hello) JSON-escaped up to six
// times (\u003c for <) and a timestamp, under 900 bytes; a user's state and
// a lease are a few dozen.
const PresenceMaxValue = 2 << 10

// FanoutConsumer is the fan-out worker's durable pull consumer of what is
// stored unpartitioned (chat.msg.<conv>, chat.member.<conv>): everything
// on a stream of a release before partitions; nothing new once it is
// partitioned.
func FanoutConsumer() jetstream.ConsumerConfig {
	return fanoutConsumer(ConsumerFanout, "delivers stored messages and membership events to members (stored unpartitioned)",
		[]string{legacyWildcard})
}

// FanoutPartitionConsumer is the fan-out consumer of partition p.
func FanoutPartitionConsumer(p int) jetstream.ConsumerConfig {
	return fanoutConsumer(ConsumerFanoutPartition(p), "delivers the messages and membership events of partition "+strconv.Itoa(p),
		PartitionFilters(p))
}

func fanoutConsumer(name, desc string, filters []string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        name,
		Description:    desc,
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  20_000,
		MaxWaiting:     64,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroupFanout},
		PinnedTTL:      5 * time.Second,
	}
}

// HistoryBatch is the most messages the history writer holds
// unacknowledged: its fetch size and the consumer's MaxAckPending.
const HistoryBatch = 500

// HistoryConsumer is the history writer's durable pull consumer. Each
// message is acked after the store has it. MaxAckPending equals the batch,
// so when a writer dies its batch is redelivered before anything newer:
// the store sees every conversation in stream order, which is what lets
// it apply an edit to its target.
func HistoryConsumer() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        ConsumerHistory,
		Description:    "copies messages into the history store (the system of record)",
		FilterSubjects: []string{StoredMsgWildcard},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        10 * time.Second,
		MaxAckPending:  HistoryBatch,
		MaxWaiting:     16,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroupHistory},
		PinnedTTL:      5 * time.Second,
	}
}

// HotWindowOf is the hot window recorded in a CHAT stream configuration's
// metadata; ok is false when there is none (a stream made by an older
// release) or it does not parse.
func HotWindowOf(cfg jetstream.StreamConfig) (d time.Duration, ok bool) {
	d, err := time.ParseDuration(cfg.Metadata[MetaHotWindow])
	return d, err == nil && d > 0
}

// DedupeWindowOf is the de-duplication window of sends recorded in a CHAT
// stream configuration's metadata; a stream made by an older release has
// none, and its own Duplicates is the whole window.
func DedupeWindowOf(cfg jetstream.StreamConfig) time.Duration {
	if d, err := time.ParseDuration(cfg.Metadata[MetaDedupeWindow]); err == nil && d > 0 {
		return max(d, cfg.Duplicates)
	}
	return cfg.Duplicates
}
