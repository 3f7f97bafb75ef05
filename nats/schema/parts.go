package schema

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// The CHAT stream is split into fan-out partitions: a subject transform of
// the stream stores a conversation's messages and membership events under
// chat.msg.<conv>.<p> and chat.member.<conv>.<p>, p the conversation's
// partition, while publishers keep publishing to chat.msg.<conv> and
// chat.member.<conv>. Each partition has its own pinned fan-out consumer,
// so deliveries spread over processes and keep each conversation's order.
//
// A stream created by a release before partitions (Partitions 0 in its
// metadata) stores chat.msg.<conv>; Ensure upgrades it in place: what it
// already holds keeps its subject (Layout.Legacy), what comes after is
// partitioned.

// DefaultPartitions is N for a new stream, or one made before partitions,
// when the operator names none: enough for the fan-out of a small cluster
// to spread over a few processes and cores.
const DefaultPartitions = 4

// MaxPartitions bounds N: the roles' permissions name each partition's
// consumer.
const MaxPartitions = 64

// Metadata keys of the CHAT stream.
const (
	// MetaPartitions is N, the number of partitions (decimal). A stream
	// without it is unpartitioned.
	MetaPartitions = "natter.partitions"
	// MetaLegacy is "true" while the stream may still hold messages stored
	// before it was partitioned, under chat.msg.<conv>.
	MetaLegacy = "natter.legacy_subjects"
)

// Stored-subject wildcards: every message, every membership event, in
// either form (chat.msg.<conv> and chat.msg.<conv>.<p>). Consumers and
// lookups of stored messages filter on these, never on MsgWildcard, which
// is what publishers publish to.
const (
	StoredMsgWildcard    = "chat.msg.>"
	StoredMemberWildcard = "chat.member.>"
	// legacyWildcard matches the stored subjects of an unpartitioned stream
	// (three tokens) and no partitioned one (four).
	legacyWildcard = "chat.*.*"
)

// Layout is how the CHAT stream stores a conversation's subjects: every
// reader of stored subjects asks it, through StoredMsg, StoredMember and
// their *Subjects lists. Read it with LayoutOf from the stream's config.
type Layout struct {
	// Partitions is N; 0 for an unpartitioned stream.
	Partitions int
	// Legacy says the stream may still hold messages stored unpartitioned
	// (it was upgraded): lookups try both forms.
	Legacy bool
	// Streams is the number of message streams (streams.go): 0 or 1 for
	// the one CHAT stream, N > 1 for CHAT_0 … CHAT_{N-1}, one per
	// partition (then Partitions is N too).
	Streams int
}

// Partition is conv's partition: what the server's partition(N,2) mapping
// computes, FNV-1a 32 of the conversation token modulo N.
func (l Layout) Partition(conv string) int {
	if l.Partitions <= 0 {
		return 0
	}
	return partitionOf(conv, l.Partitions)
}

func (l Layout) stored(prefix, conv string) string {
	if l.Partitions <= 0 {
		return prefix + conv
	}
	return prefix + conv + "." + strconv.Itoa(l.Partition(conv))
}

// StoredMsg is the subject the stream stores conv's new messages under:
// what a publish to Msg(conv) becomes.
func (l Layout) StoredMsg(conv string) string { return l.stored(msgPrefix, conv) }

// StoredMember is the subject the stream stores conv's new membership
// events under: what a publish to Member(conv) becomes, and the subject to
// name in Nats-Expected-Last-Subject-Sequence-Subject (whose expected seq
// is the last seq of this very subject, 0 when it has none).
func (l Layout) StoredMember(conv string) string { return l.stored(memberPrefix, conv) }

// StoredMsgs lists every subject conv's messages may be stored under, the
// newer form first: the legacy one too on an upgraded stream. A lookup of
// conv's last message takes the first that has one. On a stream read as
// unpartitioned it also lists the partitioned form, whatever N: the
// stream may have been upgraded since this process read its layout.
func (l Layout) StoredMsgs(conv string) []string { return l.storedAll(msgPrefix, conv) }

// StoredMembers is StoredMsgs for membership events.
func (l Layout) StoredMembers(conv string) []string { return l.storedAll(memberPrefix, conv) }

func (l Layout) storedAll(prefix, conv string) []string {
	switch {
	case l.Partitions <= 0:
		return []string{prefix + conv + ".*", prefix + conv}
	case l.Legacy:
		return []string{l.stored(prefix, conv), prefix + conv}
	}
	return []string{l.stored(prefix, conv)}
}

// IsStoredMsgOf reports whether subject is a stored message subject of
// conv, in either form.
func IsStoredMsgOf(subject, conv string) bool {
	return hasPrefix(subject, msgPrefix) && ConvFromSubject(subject) == conv
}

// PartitionFilters are the stored subjects of partition p: the filter of
// its fan-out consumer. One wildcard, chat.*.*.<p>, names both its
// messages (chat.msg.*.<p>) and its membership events (chat.member.*.<p>),
// which are all a message stream stores under four tokens. It is one
// filter on purpose: a consumer with several filters makes the file store
// find each next message by intersecting its filters with every subject
// of the block (one per conversation) once it is more messages behind
// than the block has subjects, a cost per message that grows with the
// number of conversations (issue 19: 15 % of the server's CPU in a p2p
// run with 1,000 conversations); with one wildcard it scans forward.
func PartitionFilters(p int) []string {
	return []string{legacyWildcard + "." + strconv.Itoa(p)}
}

// StoredWildcard is every stored message and membership event of a
// message stream (chat.msg.> and chat.member.>, all its stream subjects
// store): the one filter of the consumers that read both (pushnotify, the
// events writer), for the reason PartitionFilters gives.
const StoredWildcard = "chat.>"

// ConsumerFanoutPartition is the fan-out consumer of partition p. Its
// priority group is PriorityGroupFanout.
func ConsumerFanoutPartition(p int) string { return ConsumerFanout + "-" + strconv.Itoa(p) }

// FanoutConsumers lists the fan-out consumers of l: one per partition.
func (l Layout) FanoutConsumers() []string {
	out := make([]string, l.Partitions)
	for p := range out {
		out[p] = ConsumerFanoutPartition(p)
	}
	return out
}

// FanoutConsumersOn lists the fan-out consumers of l on the message
// stream named stream: every partition's on a partitioned CHAT, the one
// of its partition on a partition stream CHAT_p (StreamOfPartition).
func (l Layout) FanoutConsumersOn(stream string) []string {
	var out []string
	for p, name := range l.FanoutConsumers() {
		if l.StreamOfPartition(p) == stream {
			out = append(out, name)
		}
	}
	return out
}

// transform is the CHAT stream's subject transform for n partitions:
// chat.<kind>.<conv> is stored as chat.<kind>.<conv>.<partition of conv>.
// The partition hashes the conversation token alone, so a conversation's
// messages and membership events share it.
func transform(n int) *jetstream.SubjectTransformConfig {
	if n <= 0 {
		return nil
	}
	return &jetstream.SubjectTransformConfig{
		Source:      legacyWildcard,
		Destination: fmt.Sprintf("chat.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(%d,2)}}", n),
	}
}

// LayoutOf is the layout recorded in a CHAT stream configuration.
func LayoutOf(cfg jetstream.StreamConfig) Layout {
	if l, ok := streamsOf(cfg); ok {
		return l
	}
	n, err := strconv.Atoi(cfg.Metadata[MetaPartitions])
	if err != nil || n <= 0 || cfg.SubjectTransform == nil {
		return Layout{}
	}
	return Layout{Partitions: n, Legacy: cfg.Metadata[MetaLegacy] == "true"}
}

// ReadLayout reads the message streams' layout: CHAT's, or when there is
// none the partition streams' (recorded in each, read from CHAT_0).
func ReadLayout(ctx context.Context, js jetstream.JetStream) (Layout, error) {
	st, err := liveChat(ctx, js)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, l, serr := streamsLayout(ctx, js)
		if serr == nil {
			return l, nil
		}
		if !errors.Is(serr, jetstream.ErrStreamNotFound) {
			err = serr
		}
	}
	if err != nil {
		return Layout{}, fmt.Errorf("layout of %s: %w", StreamChat, err)
	}
	return LayoutOf(st.CachedInfo().Config), nil
}

// ErrRepartition refuses to change N of a partitioned stream: its
// conversations would change partitions, and their fan-out order with it.
var ErrRepartition = errors.New("schema: the CHAT stream's partition count cannot be changed in place")

// layoutFor decides the layout Ensure gives the CHAT stream: the one it
// has (N from c if given, else the recorded one), or for a new or
// unpartitioned stream c's N (DefaultPartitions if none). An
// unpartitioned stream becomes Legacy; a Legacy stream stays so while it
// holds any message stored unpartitioned (hasLegacy).
func layoutFor(ctx context.Context, js jetstream.JetStream, c Config) (Layout, error) {
	if c.Partitions < 0 || c.Partitions > MaxPartitions {
		return Layout{}, fmt.Errorf("schema: %d partitions: want 1 to %d", c.Partitions, MaxPartitions)
	}
	if c.Streams < 0 || c.Streams > MaxStreams {
		return Layout{}, fmt.Errorf("schema: %d streams: want 1 to %d", c.Streams, MaxStreams)
	}
	if c.Streams > 1 && c.Partitions != 0 && c.Partitions != c.Streams {
		return Layout{}, fmt.Errorf("schema: %d streams have %d partitions, one each, not %d", c.Streams, c.Streams, c.Partitions)
	}
	st, err := liveChat(ctx, js)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, l, serr := streamsLayout(ctx, js)
		switch {
		case errors.Is(serr, jetstream.ErrStreamNotFound):
			if c.Streams > 1 {
				return Layout{Partitions: c.Streams, Streams: c.Streams}, nil
			}
			return Layout{Partitions: cmp(c.Partitions, DefaultPartitions)}, nil
		case serr != nil:
			return Layout{}, fmt.Errorf("look up stream %s: %w", PartitionStream(0), serr)
		case c.Streams != 0 && c.Streams != l.Streams:
			return Layout{}, fmt.Errorf("%w: the messages are in %d streams, asked for %d", ErrRepartition, l.Streams, c.Streams)
		case c.Partitions != 0 && c.Partitions != l.Partitions:
			return Layout{}, fmt.Errorf("%w: the messages are in %d streams of one partition each, asked for %d partitions", ErrRepartition, l.Streams, c.Partitions)
		}
		return l, nil
	}
	if err != nil {
		return Layout{}, fmt.Errorf("look up stream %s: %w", StreamChat, err)
	}
	if c.Streams > 1 {
		return Layout{}, fmt.Errorf("%w: the messages are in the one stream %s, asked for %d streams", ErrRepartition, StreamChat, c.Streams)
	}
	info := st.CachedInfo()
	old := LayoutOf(info.Config)
	if old.Partitions > 0 {
		if c.Partitions != 0 && c.Partitions != old.Partitions {
			return Layout{}, fmt.Errorf("%w: it has %d, asked for %d", ErrRepartition, old.Partitions, c.Partitions)
		}
		if old.Legacy {
			if old.Legacy, err = hasLegacy(ctx, st); err != nil {
				return Layout{}, err
			}
		}
		return old, nil
	}
	// Legacy until Ensure has looked: a message may be stored
	// unpartitioned until the update is applied.
	return Layout{Partitions: cmp(c.Partitions, DefaultPartitions), Legacy: true}, nil
}

func cmp(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// hasLegacy reports whether st holds a message stored unpartitioned.
func hasLegacy(ctx context.Context, st jetstream.Stream) (bool, error) {
	_, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(legacyWildcard))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for unpartitioned messages in %s: %w", StreamChat, err)
	}
	return true, nil
}
