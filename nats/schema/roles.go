package schema

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Role users of the CHAT account. Each role process connects as its own
// NATS user, whose permissions (RolePermissions) allow what that role does
// at runtime and nothing else: the JetStream API subjects of its own
// streams, buckets and consumers, the subjects it publishes and
// subscribes to, and replies on its own inbox prefix (Inbox). None may
// create, update, purge or delete a stream or a durable consumer: the
// schema is the operator's (Ensure, run by natter serve and natter nats).
const (
	// RoleGateway serves WebSocket clients and runs a fan-out worker.
	RoleGateway = "gateway"
	// RoleHistory writes the history store and serves chat.api.history.
	RoleHistory = "history"
	// RolePresence runs the presence service.
	RolePresence = "presence"
	// RolePush runs the push notification dispatcher.
	RolePush = "pushnotify"
	// RoleService is for internal services: publish messages into
	// conversations and read history, nothing else.
	RoleService = "service"
	// RoleEvents writes the events for services (bots) and delivers the
	// events of services with a webhook (svcevents.go).
	RoleEvents = "events"
	// RoleIndexer keeps the search index and serves chat.api.search
	// (search.go).
	RoleIndexer = "indexer"
)

// Roles lists the role users.
var Roles = []string{RoleGateway, RoleHistory, RolePresence, RolePush, RoleService, RoleEvents, RoleIndexer, RoleEraser}

// Inbox is the reply-subject prefix of role's connections: they must set
// it (nats.CustomInboxPrefix), since a role may subscribe to its own
// replies only. With one shared _INBOX.> any role could read the replies
// another gets: KV values, push tokens, messages.
func Inbox(role string) string { return inboxPrefix + role }

// access is what one role uses of the schema; its permissions and the
// schema check at its start both follow from it.
type access struct {
	// pub and sub are the plain subjects it publishes and subscribes to.
	pub, sub []string
	// read are streams it reads any message of (direct gets). StreamChat
	// here and in lookup stands for every message stream (chatStreams).
	read []string
	// lookup are streams it only looks up (their info).
	lookup []string
	// write and readOnly are KV buckets it writes (and reads) or only
	// reads. Reading a bucket is getting keys and watching them (with
	// ordered consumers of its own on the bucket's stream): permissions
	// are per bucket, not per key, so a new key prefix needs no change.
	write, readOnly []string
	// consume are the durable consumers on every message stream it pulls
	// from, acks and hands over (unpin, rewind); peek those whose info it
	// reads. A role with any of them may look up every message stream,
	// to read the layout.
	consume, peek []string
	// partitions: it also consumes the fan-out consumer of every partition
	// (permissions name MaxPartitions of them; Check does not look for
	// them, the stream may have fewer).
	partitions bool
	// responses lets it answer requests it received (a micro service).
	responses bool
	// serviceConsumers: it also pulls from and acks the consumer of every
	// service on StreamServiceEvents (the webhook dispatcher). Check does
	// not look for them: they come and go with the services.
	serviceConsumers bool
	// deleteMsgs are streams it deletes single messages of by seq
	// (STREAM.MSG.DELETE): only the eraser's, of CHAT.
	deleteMsgs []string
	// purge are KV buckets it only deletes keys of, never reads: the
	// eraser's of the device tokens (PUSH).
	purge []string
	// progress are consumers on CHAT whose info it reads if they exist
	// (Check does not look for them), with every partition's fan-out
	// consumer: the eraser deletes another's message from CHAT only once
	// every consumer is past it.
	progress []string
}

// accessOf is the table of roles. The gateway's user also runs its
// fan-out worker; presence and pushnotify read conversation documents but
// never messages; only the gateway and pushnotify touch PUSH (device
// tokens); only the gateway and history read CHAT's messages directly.
func accessOf(role string) (access, bool) {
	switch role {
	case RoleGateway:
		return access{
			pub: []string{MsgWildcard, MemberWildcard, MappedMsgWildcard, MappedMemberWildcard, TypingWildcard, ReadWildcard, DeliveredWildcard,
				UserEventWildcard, DeadWildcard, HistoryAPIWildcard, FanoutWorkers, SearchAPIWildcard,
				// a client's delete_account and export (erase.go)
				EraseAPI(EraseEndpointStart), EraseAPI(EraseEndpointExport)},
			// The chat service API (services/chatapi) runs with the
			// gateway's user: requests of every service, micro discovery.
			sub: []string{UserAllWildcard, TypingWildcard, ReadWildcard, DeliveredWildcard, FanoutWorkers,
				ServiceAPIAll, ServiceWildcard},
			read:     []string{StreamChat},
			write:    []string{BucketConversations, BucketPresence, BucketPush, BucketAttachments},
			readOnly: []string{BucketServices},
			// fan-out's consumer; the history writer's ack floor tells a
			// reader where the store ends.
			consume:    []string{ConsumerFanout},
			partitions: true,
			peek:       []string{ConsumerHistory},
			responses:  true,
		}, true
	case RoleHistory:
		return access{
			pub:       []string{DeadWildcard},
			sub:       []string{HistoryAPIAll, ServiceWildcard},
			read:      []string{StreamChat},
			lookup:    []string{StreamDead}, // its size, for the dead-letter alert
			write:     []string{BucketLeases},
			consume:   []string{ConsumerHistory},
			responses: true,
		}, true
	case RolePresence:
		return access{
			pub:      []string{PresenceWildcard, UserEvent(EventPresence)},
			write:    []string{BucketPresence},
			readOnly: []string{BucketConversations},
		}, true
	case RolePush:
		return access{
			pub:      []string{PushDeadWildcard},
			lookup:   []string{StreamChat, StreamPushDead}, // PUSH_DLQ: its size, for the DLQ alert
			write:    []string{BucketPush, BucketPushSent},
			readOnly: []string{BucketPresence, BucketConversations},
			consume:  []string{ConsumerPush},
		}, true
	case RoleService:
		return access{pub: []string{MsgWildcard, MappedMsgWildcard, HistoryAPIWildcard}}, true
	case RoleEvents:
		// Reads CHAT only through its consumer (no direct gets: it never
		// reads a message out of order), conversation documents and the
		// services registry, and writes SVC_EVENTS and the webhook DLQ.
		return access{
			pub:              []string{ServiceEventWildcard, WebhookDeadWildcard},
			lookup:           []string{StreamChat, StreamServiceEvents, StreamWebhookDead},
			readOnly:         []string{BucketConversations, BucketServices},
			consume:          []string{ConsumerServiceEvents},
			serviceConsumers: true,
		}, true
	case RoleIndexer:
		// Reads CHAT only through its consumer, in order; answers the
		// search API (and micro discovery). It reads no bucket but
		// LEASES (the lease of an embedded index): the gateway checks
		// membership before it asks.
		return access{
			sub:       []string{SearchAPIAll, ServiceWildcard},
			write:     []string{BucketLeases},
			consume:   []string{ConsumerSearch},
			responses: true,
		}, true
	case RoleEraser:
		// Removes a user from their conversations (membership events,
		// like the gateway's), publishes the deletions of their messages,
		// closes their connections (chat.user.<uid>.account.erased), reads
		// CHAT and the history writer's floor to find their messages, and
		// deletes them from CHAT: the one role that may. It also runs
		// the conversations' retention (services/erase/retain.go): it
		// deletes old messages from CHAT and asks the indexer to forget
		// them once the search consumer is past them.
		return access{
			pub:        []string{MsgWildcard, MemberWildcard, MappedMsgWildcard, MappedMemberWildcard, UserEventWildcard, UserErased("*"), SearchForget()},
			sub:        []string{EraseAPIAll, ServiceWildcard},
			read:       []string{StreamChat},
			write:      []string{BucketConversations, BucketPresence, BucketAttachments},
			purge:      []string{BucketPush},
			peek:       []string{ConsumerHistory, ConsumerSearch},
			responses:  true,
			deleteMsgs: []string{StreamChat},
			progress:   ChatConsumers(),
		}, true
	}
	return access{}, false
}

// Permissions is what a role's NATS user may do: the subjects it may
// publish to (JetStream API requests and acks included) and subscribe
// to, and whether it may answer requests it received.
type Permissions struct {
	Publish, Subscribe []string
	AllowResponses     bool
}

// RolePermissions returns role's permissions; ok is false for an unknown
// role. JetStream API subjects name the exact stream, bucket stream and
// consumer; the only wildcards are a reader's direct gets by subject
// within one stream (KV keys, a conversation's last message), ordered
// consumers (KV watchers) on the streams of the buckets it reads, and
// acks and flow control of its own consumers.
func RolePermissions(role string) (p Permissions, ok bool) {
	a, ok := accessOf(role)
	if !ok {
		return p, false
	}
	api := func(s ...string) {
		for _, x := range s {
			p.Publish = append(p.Publish, jsAPIPrefix+x)
		}
	}
	p.Publish = append(p.Publish, a.pub...)
	p.Subscribe = append([]string{Inbox(role) + ".>"}, a.sub...)
	p.AllowResponses = a.responses
	if role == RoleService {
		return p, true // publishes with acks, requests history; no JetStream API
	}
	api("INFO") // account info: the readiness check
	if len(a.consume) > 0 || len(a.peek) > 0 || a.partitions {
		for _, s := range AllChatStreams() {
			api("STREAM.INFO." + s) // the layout (ReadLayout)
		}
	}
	for _, s := range chatStreams(a.lookup, AllChatStreams()) {
		api("STREAM.INFO." + s)
	}
	for _, s := range chatStreams(a.read, AllChatStreams()) {
		api("STREAM.INFO."+s, "STREAM.MSG.GET."+s, "DIRECT.GET."+s, "DIRECT.GET."+s+".>")
	}
	for _, b := range slices.Concat(a.write, a.readOnly) {
		s := KVStream(b)
		// A KV Get is a direct get of the key's last value. A watcher (and
		// a key list) is an ordered push consumer, created (and re-created
		// after a gap) on the bucket's stream only and deleted when it
		// stops, with flow control answered on $JS.FC.
		// The bare DIRECT.GET takes a request body: a batch of keys' last
		// values in one multi_last read (the inbox's summaries).
		api("STREAM.INFO."+s, "DIRECT.GET."+s, "DIRECT.GET."+s+"."+KVWildcard(b),
			"CONSUMER.CREATE."+s, "CONSUMER.CREATE."+s+".>", "CONSUMER.INFO."+s+".*", "CONSUMER.DELETE."+s+".*")
		p.Publish = append(p.Publish, jsFCPrefix+s+".>")
	}
	for _, b := range a.purge {
		// kv.Delete and kv.Purge publish on the key's subject; opening the
		// bucket looks up its stream.
		api("STREAM.INFO." + KVStream(b))
		p.Publish = append(p.Publish, KVWildcard(b))
	}
	for _, s := range chatStreams(a.deleteMsgs, AllChatStreams()) {
		api("STREAM.MSG.DELETE." + s)
	}
	if len(a.progress) > 0 {
		for _, st := range AllChatStreams() {
			for _, c := range a.progress {
				api("CONSUMER.INFO." + st + "." + c)
			}
		}
		for p := range MaxPartitions {
			api("CONSUMER.INFO." + StreamChat + "." + ConsumerFanoutPartition(p))
		}
		for p := range MaxStreams {
			api("CONSUMER.INFO." + PartitionStream(p) + "." + ConsumerFanoutPartition(p))
		}
	}
	for _, b := range a.write {
		// A writer also reads a key through the bucket's stream leader
		// (STREAM.MSG.GET), which a replica behind it cannot answer: the
		// gateway's membership views (conversation.Store.MemberView).
		api("STREAM.MSG.GET." + KVStream(b))
		p.Publish = append(p.Publish, KVWildcard(b))
	}
	type streamConsumer struct{ stream, consumer string }
	var consume []streamConsumer
	for _, st := range AllChatStreams() {
		for _, c := range a.consume {
			consume = append(consume, streamConsumer{st, c})
		}
	}
	if a.partitions {
		// Every fan-out partition's consumer on CHAT; partition p's
		// own on CHAT_p.
		for p := range MaxPartitions {
			consume = append(consume, streamConsumer{StreamChat, ConsumerFanoutPartition(p)})
		}
		for p := range MaxStreams {
			consume = append(consume, streamConsumer{PartitionStream(p), ConsumerFanoutPartition(p)})
		}
	}
	for _, sc := range consume {
		st, c := sc.stream, sc.consumer
		api("CONSUMER.INFO."+st+"."+c, "CONSUMER.MSG.NEXT."+st+"."+c,
			"CONSUMER.UNPIN."+st+"."+c, "CONSUMER.RESET."+st+"."+c)
		p.Publish = append(p.Publish, AckWildcard(st, c))
	}
	for _, st := range AllChatStreams() {
		for _, c := range a.peek {
			api("CONSUMER.INFO." + st + "." + c)
		}
	}
	if a.serviceConsumers {
		// Every consumer of SVC_EVENTS is a service's (a wildcard is a
		// whole token, "svc-*" would be a literal); it may not create or
		// delete one.
		api("CONSUMER.INFO."+StreamServiceEvents+".*", "CONSUMER.MSG.NEXT."+StreamServiceEvents+".*")
		p.Publish = append(p.Publish, jsAckPrefix+StreamServiceEvents+".>")
	}
	p.Publish = dedupe(p.Publish)
	return p, true
}

// chatStreams is streams with StreamChat replaced by chat, the message
// streams.
func chatStreams(streams, chat []string) []string {
	var out []string
	for _, s := range streams {
		if s == StreamChat {
			out = append(out, chat...)
		} else {
			out = append(out, s)
		}
	}
	return out
}

func dedupe(s []string) []string {
	out := s[:0]
	seen := make(map[string]bool, len(s))
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// ErrMissing says a stream, bucket or consumer a role needs does not
// exist: the operator has not created the schema yet.
var ErrMissing = errors.New("schema: missing")

// OperatorStep is what an operator runs to create or update the schema.
const OperatorStep = "the operator creates and updates the NATS schema: start the `natter nats` nodes " +
	"(each ensures it once the cluster has a leader), run `natter serve`, or `natter migrate --nats-url <operator URL>`"

// Check looks up every stream, bucket and durable consumer the roles use,
// with the lookups their users are allowed, and creates nothing: a role
// never changes the schema. A missing one is an ErrMissing naming it and
// the operator's step; other errors (no JetStream leader yet) are
// returned as they are.
func Check(ctx context.Context, js jetstream.JetStream, roles ...string) error {
	var layout *Layout
	for _, role := range roles {
		a, ok := accessOf(role)
		if !ok {
			return fmt.Errorf("schema: unknown role %q", role)
		}
		if layout == nil && (len(a.read)+len(a.lookup)+len(a.consume)+len(a.peek) > 0 || a.partitions) {
			l, err := ReadLayout(ctx, js)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("%w: stream %s (role %s); %s", ErrMissing, StreamChat, role, OperatorStep)
			} else if err != nil {
				return err
			}
			layout = &l
		}
		var chat []string
		if layout != nil {
			chat = layout.ChatStreams()
		}
		for _, s := range chatStreams(slices.Concat(a.read, a.lookup), chat) {
			if _, err := js.Stream(ctx, s); errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("%w: stream %s (role %s); %s", ErrMissing, s, role, OperatorStep)
			} else if err != nil {
				return fmt.Errorf("look up stream %s: %w", s, err)
			}
		}
		for _, b := range slices.Concat(a.write, a.readOnly, a.purge) {
			if _, err := js.KeyValue(ctx, b); errors.Is(err, jetstream.ErrBucketNotFound) {
				return fmt.Errorf("%w: KV bucket %s (role %s); %s", ErrMissing, b, role, OperatorStep)
			} else if err != nil {
				return fmt.Errorf("look up KV bucket %s: %w", b, err)
			}
		}
		for _, st := range chat {
			for _, c := range slices.Concat(a.consume, a.peek) {
				if c == ConsumerFanout && layout.Split() {
					continue // partition streams have only their partition's
				}
				if _, err := js.Consumer(ctx, st, c); errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
					return fmt.Errorf("%w: consumer %s on stream %s (role %s); %s", ErrMissing, c, st, role, OperatorStep)
				} else if err != nil {
					return fmt.Errorf("look up consumer %s: %w", c, err)
				}
			}
		}
	}
	return nil
}
