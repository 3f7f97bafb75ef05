package e2e

import (
	"testing"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/history/scyllastore/scyllatest"
)

// withCassandra runs the App on the ScyllaDB store, in a fresh keyspace on
// the database named by NATTER_CQL_HOSTS; scyllatest decides what happens
// without one (fail under CI, skip loudly elsewhere).
func withCassandra(t *testing.T) func(*app.Config) {
	t.Helper()
	// Small buckets: pages cross many partitions.
	store := scyllatest.Open(t, scyllatest.Config(t, "natter_e2e_", 256))
	return func(c *app.Config) { c.History = app.HistoryConfig{Store: store} }
}

// eachStore runs fn once with the embedded store and once with Cassandra.
func eachStore(t *testing.T, fn func(t *testing.T, store func(*app.Config))) {
	t.Run("embedded", func(t *testing.T) { fn(t, func(*app.Config) {}) })
	t.Run("cassandra", func(t *testing.T) { fn(t, withCassandra(t)) })
}
