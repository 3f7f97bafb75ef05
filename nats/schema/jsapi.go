package schema

// Subjects of NATS itself that Natter's processes use: JetStream's API and
// acknowledgements, the KV buckets' raw subjects, reply inboxes and micro
// service discovery. They are spelled here, with the names they are built
// from, so that a role's permissions follow a renamed bucket or consumer.
const (
	// InboxWildcard matches the reply subjects of requests (nats.go's
	// default inbox prefix).
	InboxWildcard = "_INBOX.>"
	// ServiceWildcard matches NATS micro discovery and stats requests.
	ServiceWildcard = "$SRV.>"

	jsAPIPrefix  = "$JS.API."
	jsAckPrefix  = "$JS.ACK."
	kvPrefix     = "$KV."
	kvStreamName = "KV_"
)

// KVStream is the name of the stream that holds bucket.
func KVStream(bucket string) string { return kvStreamName + bucket }

// KVKey is the subject a value of bucket's key is stored on. Publishing to
// it directly is how a value gets a per-message TTL, which KV Put cannot
// set.
func KVKey(bucket, key string) string { return kvPrefix + bucket + "." + key }

// KVWildcard matches every key of bucket: writing or deleting any value.
func KVWildcard(bucket string) string { return kvPrefix + bucket + ".>" }

// AckWildcard matches the acknowledgements of consumer on stream.
func AckWildcard(stream, consumer string) string {
	return jsAckPrefix + stream + "." + consumer + ".>"
}

// Buckets lists every KV bucket of the schema.
func Buckets() []string {
	return []string{BucketConversations, BucketPresence, BucketPush, BucketPushSent}
}

// JSClientAPI lists the JetStream API subjects every Natter process calls:
// account and stream info, the schema's idempotent create-or-update,
// direct gets (KV reads and message pages), consumers (KV watchers and
// lists are ordered consumers; the services' durables), their pulls and
// flow control, and the hand-over of a pinned consumer: unpinning, and
// rewinding the fan-out's to its ack floor (nats/pinned). Watchers and key lists are ephemeral consumers deleted
// when they stop; wildcards are whole tokens, so each bucket's stream is
// named. Deleting or purging streams is left to the operator.
func JSClientAPI() []string {
	api := []string{
		jsAPIPrefix + "INFO",
		jsAPIPrefix + "STREAM.INFO.*",
		jsAPIPrefix + "STREAM.NAMES",
		jsAPIPrefix + "STREAM.LIST",
		jsAPIPrefix + "STREAM.CREATE.*",
		jsAPIPrefix + "STREAM.UPDATE.*",
		jsAPIPrefix + "STREAM.MSG.GET.*",
		jsAPIPrefix + "DIRECT.GET.>",
		jsAPIPrefix + "CONSUMER.CREATE.>",
		jsAPIPrefix + "CONSUMER.DURABLE.CREATE.>",
		jsAPIPrefix + "CONSUMER.INFO.>",
		jsAPIPrefix + "CONSUMER.NAMES.>",
		jsAPIPrefix + "CONSUMER.LIST.>",
		jsAPIPrefix + "CONSUMER.MSG.NEXT.>",
	}
	for _, b := range Buckets() {
		api = append(api, jsAPIPrefix+"CONSUMER.DELETE."+KVStream(b)+".*")
	}
	return append(api,
		jsAPIPrefix+"CONSUMER.UNPIN.>",
		jsAPIPrefix+"CONSUMER.RESET."+StreamChat+"."+ConsumerFanout,
		"$JS.FC.>",
		InboxWildcard,
	)
}

// MsgGetAPI is the JetStream API subject that reads one message of stream
// by sequence, by subject or by time (the request's start_time), answered
// by the stream's leader.
func MsgGetAPI(stream string) string { return jsAPIPrefix + "STREAM.MSG.GET." + stream }

// DirectGetAPI is the JetStream API subject of stream's direct gets (one
// message, or a batch by subject), answered by any replica.
func DirectGetAPI(stream string) string { return jsAPIPrefix + "DIRECT.GET." + stream }
