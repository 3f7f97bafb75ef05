package schema

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// BucketLeases holds the leases of parts that must run once per
	// cluster: a key its holder keeps alive with a per-message TTL, so it
	// expires when the holder dies without releasing it.
	BucketLeases = "LEASES"
	// LeaseHistoryWriter is the lease of the history writer of an
	// embedded history store: only one such writer may consume the
	// history consumer, or each store would hold part of the history.
	LeaseHistoryWriter = "history.writer"
)

// LeasesBucket is the LEASES KV bucket's configuration. Keys carry their
// own TTL (LimitMarkerTTL allows per-message TTLs); History 1 because only
// the holder matters.
func LeasesBucket(c Config) jetstream.KeyValueConfig {
	c = c.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:         BucketLeases,
		Description:    "Natter leases of once-per-cluster parts: history.writer, search.indexer",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       c.Replicas,
		LimitMarkerTTL: time.Minute,
	}
}
