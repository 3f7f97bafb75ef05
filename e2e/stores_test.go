package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/history/scyllastore"
)

// cassandraStart is how to get the database the Cassandra variants need.
const cassandraStart = "export NATTER_CQL_HOSTS=$(deploy/cassandra/start.sh)   # or: go tool task test"

// withCassandra runs the App on the ScyllaDB store, in a fresh keyspace on
// the database named by NATTER_CQL_HOSTS. Without it the test fails under
// CI and is skipped, loudly, elsewhere.
func withCassandra(t *testing.T) func(*app.Config) {
	t.Helper()
	hosts := os.Getenv("NATTER_CQL_HOSTS")
	if hosts == "" {
		msg := "NATTER_CQL_HOSTS is not set: this test needs a real Cassandra/ScyllaDB. Start one with:\n\t" + cassandraStart
		if os.Getenv("CI") != "" {
			t.Fatal("CI: " + msg)
		}
		t.Skip("SKIPPED (no database): " + msg)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg := scyllastore.Config{
		Hosts:      strings.Split(hosts, ","),
		Keyspace:   "natter_e2e_" + hex.EncodeToString(b[:]),
		BucketSize: 256, // small buckets: pages cross many partitions
		Timeout:    20 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := scyllastore.Migrate(ctx, cfg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	store, err := scyllastore.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = store.Close()
		cluster := gocql.NewCluster(cfg.Hosts...)
		cluster.Timeout = 30 * time.Second
		session, err := cluster.CreateSession()
		if err != nil {
			t.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
			return
		}
		defer session.Close()
		if err := session.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).Exec(); err != nil {
			t.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
		}
	})
	return func(c *app.Config) { c.History = app.HistoryConfig{Store: store} }
}

// eachStore runs fn once with the embedded store and once with Cassandra.
func eachStore(t *testing.T, fn func(t *testing.T, store func(*app.Config))) {
	t.Run("embedded", func(t *testing.T) { fn(t, func(*app.Config) {}) })
	t.Run("cassandra", func(t *testing.T) { fn(t, withCassandra(t)) })
}
