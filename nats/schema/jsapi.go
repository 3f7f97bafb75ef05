package schema

// Subjects of NATS itself that Natter's processes use: JetStream's API and
// acknowledgements and flow control, the KV buckets' raw subjects, reply
// inboxes (roles.go) and micro service discovery. They are spelled here, with the names they are built
// from, so that a role's permissions follow a renamed bucket or consumer.
const (
	// ServiceWildcard matches NATS micro discovery and stats requests.
	ServiceWildcard = "$SRV.>"

	jsAPIPrefix  = "$JS.API."
	jsAckPrefix  = "$JS.ACK."
	jsFCPrefix   = "$JS.FC."
	inboxPrefix  = "_INBOX."
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
	return []string{BucketConversations, BucketPresence, BucketPush, BucketPushSent, BucketServices}
}

// MsgGetAPI is the JetStream API subject that reads one message of stream
// by sequence, by subject or by time (the request's start_time), answered
// by the stream's leader.
func MsgGetAPI(stream string) string { return jsAPIPrefix + "STREAM.MSG.GET." + stream }

// DirectGetAPI is the JetStream API subject of stream's direct gets (one
// message, or a batch by subject), answered by any replica.
func DirectGetAPI(stream string) string { return jsAPIPrefix + "DIRECT.GET." + stream }
