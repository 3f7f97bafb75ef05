package schema

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Partitioned message streams. A schema made with Config.Streams N > 1
// keeps its messages in N streams, CHAT_0 … CHAT_{N-1}, each its own Raft
// group with its own leader, instead of the one CHAT stream. Publishers
// still publish to chat.msg.<conv> and chat.member.<conv>: the account's
// subject mapping (Mappings, in every NATS server's configuration) turns
// that into chat.msg.<conv>.<p>, p = partition(N) of the conversation
// token, and CHAT_p stores chat.msg.*.<p> and chat.member.*.<p>. The
// stored subjects are those of one CHAT stream with N fan-out partitions,
// so partition p of the fan-out is stream p, and every reader of stored
// subjects (Layout.StoredMsg …) is unchanged. A stream's seq is per
// partition, so a conversation's seq stays monotonic.
//
// A schema with one stream (N = 1, every schema made before streams) keeps
// the name CHAT, its in-stream subject transform and no account mapping:
// an upgrade moves nothing.

// MaxStreams bounds N: the roles' permissions name every partition
// stream's API subjects and consumers.
const MaxStreams = 32

// MetaStreams is the metadata key of each partition stream holding N
// (decimal). CHAT has none: one stream.
const MetaStreams = "natter.streams"

// chatStreamNames are the partition streams' names, built once: naming a
// conversation's stream allocates nothing.
var chatStreamNames = func() [MaxStreams]string {
	var names [MaxStreams]string
	for p := range names {
		names[p] = StreamChat + "_" + strconv.Itoa(p)
	}
	return names
}()

// PartitionStream is the name of partition stream p, CHAT_<p>.
func PartitionStream(p int) string { return chatStreamNames[p] }

// Split reports whether l keeps its messages in several streams.
func (l Layout) Split() bool { return l.Streams > 1 }

// StreamOfPartition is the stream that holds partition p.
func (l Layout) StreamOfPartition(p int) string {
	if l.Split() {
		return chatStreamNames[p]
	}
	return StreamChat
}

// StreamOf is the stream that holds conv's messages and membership events.
// It allocates nothing (the send path calls it for every message).
func (l Layout) StreamOf(conv string) string {
	if !l.Split() {
		return StreamChat
	}
	return chatStreamNames[partitionOf(conv, l.Streams)]
}

// StreamIndex is the index of conv's stream in ChatStreams: its
// partition in a split layout, 0 for CHAT.
func (l Layout) StreamIndex(conv string) int {
	if !l.Split() {
		return 0
	}
	return partitionOf(conv, l.Streams)
}

// ChatStreams lists the message streams of l: CHAT, or CHAT_0 … CHAT_{N-1}.
func (l Layout) ChatStreams() []string {
	if !l.Split() {
		return []string{StreamChat}
	}
	return chatStreamNames[:l.Streams:l.Streams]
}

// AllChatStreams lists every name a message stream may have, CHAT and
// CHAT_0 … CHAT_{MaxStreams-1}: what the roles' permissions name, since
// they are fixed before the layout is read.
func AllChatStreams() []string {
	return append([]string{StreamChat}, chatStreamNames[:]...)
}

// partitionOf is the server's partition(n) of token: FNV-1a 32 of its
// bytes modulo n, computed over the string without a copy.
func partitionOf(token string, n int) int {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(token); i++ {
		h ^= uint32(token[i])
		h *= prime32
	}
	return int(h % uint32(n))
}

// Mappings is the CHAT account's subject mapping for n partition streams
// (nil for one stream): what every NATS server's configuration must hold,
// as `mappings { "chat.msg.*": "chat.msg.{{wildcard(1)}}.{{partition(n,1)}}" … }`
// inside the account. NATS applies it before permissions, so a role
// publishing messages is allowed the mapped subjects (chat.msg.*.*).
func Mappings(n int) map[string]string {
	if n <= 1 {
		return nil
	}
	return map[string]string{
		MsgWildcard:    fmt.Sprintf("%s{{wildcard(1)}}.{{partition(%d,1)}}", msgPrefix, n),
		MemberWildcard: fmt.Sprintf("%s{{wildcard(1)}}.{{partition(%d,1)}}", memberPrefix, n),
	}
}

// Mapped subject wildcards: what a publish to MsgWildcard or
// MemberWildcard becomes under Mappings, and what the roles that publish
// messages are allowed on a server with a mapping.
const (
	MappedMsgWildcard    = MsgWildcard + ".*"
	MappedMemberWildcard = MemberWildcard + ".*"
)

// partitionStream is partition stream p of n: CHAT's configuration with
// the partition's name and subjects and no transform (the account's
// mapping already partitioned the subject).
func partitionStream(c Config, p, n int) jetstream.StreamConfig {
	one := c
	one.layout = Layout{Partitions: n}
	sc := ChatStream(one)
	s := strconv.Itoa(p)
	sc.Name = chatStreamNames[p]
	sc.Description = "Natter messages and membership events of partition " + s + " of " + strconv.Itoa(n) + " (the hot window, and what the history store lacks)"
	sc.Subjects = []string{MsgWildcard + "." + s, MemberWildcard + "." + s}
	sc.SubjectTransform = nil
	sc.Metadata[MetaStreams] = strconv.Itoa(n)
	return sc
}

// ChatStreamConfigs lists the message streams' configurations of layout
// l: CHAT, or each partition stream.
func ChatStreamConfigs(c Config, l Layout) []jetstream.StreamConfig {
	c.layout = l
	if !l.Split() {
		return []jetstream.StreamConfig{ChatStream(c)}
	}
	out := make([]jetstream.StreamConfig, l.Streams)
	for p := range out {
		out[p] = partitionStream(c, p, l.Streams)
	}
	return out
}

// streamsLayout reads the layout of a split schema from CHAT_0, the
// first partition stream; ErrStreamNotFound when there is none.
func streamsLayout(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, Layout, error) {
	st, err := js.Stream(ctx, chatStreamNames[0])
	if err != nil {
		return nil, Layout{}, err
	}
	if isRetired(st.CachedInfo().Config) {
		return nil, Layout{}, fmt.Errorf("%s retired by a re-partition: %w", chatStreamNames[0], jetstream.ErrStreamNotFound)
	}
	return st, LayoutOf(st.CachedInfo().Config), nil
}

// liveChat looks up CHAT, ErrStreamNotFound when there is none or a
// re-partition retired it (repartition.go).
func liveChat(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, StreamChat)
	if err == nil && isRetired(st.CachedInfo().Config) {
		return nil, fmt.Errorf("%s retired by a re-partition: %w", StreamChat, jetstream.ErrStreamNotFound)
	}
	return st, err
}

// streamsOf is the layout of a partition stream's configuration, ok false
// for CHAT.
func streamsOf(cfg jetstream.StreamConfig) (Layout, bool) {
	n, err := strconv.Atoi(cfg.Metadata[MetaStreams])
	if err != nil || n <= 1 {
		return Layout{}, false
	}
	return Layout{Partitions: n, Streams: n}, true
}
