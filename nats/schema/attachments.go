package schema

import "github.com/nats-io/nats.go/jetstream"

// BucketAttachments holds a record per attachment (a.<id>: owner, content
// type, size, the conversation that references it) and each user's bytes
// used (q.<uid>), for package attachments.
const BucketAttachments = "ATTACHMENTS"

// AttachmentsBucket is the ATTACHMENTS KV bucket's configuration.
func AttachmentsBucket(c Config) jetstream.KeyValueConfig {
	c = c.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:       BucketAttachments,
		Description:  "Natter attachments: a.<id> records, q.<uid> bytes used",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: 2 << 10,
	}
}
