// Package scyllatest is the one gate for tests that need a real
// Cassandra or ScyllaDB: it reads NATTER_CQL_HOSTS, and a test that cannot
// have its database fails under CI (env CI set) and is skipped, loudly,
// elsewhere. It also makes and drops the throwaway keyspaces those tests
// use.
package scyllatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/natter-chat/natter/history/scyllastore"
)

// EnvHosts names the variable holding the CQL contact points,
// host[:port],...
const EnvHosts = "NATTER_CQL_HOSTS"

// StartCommand is how to get the database these tests need.
const StartCommand = "export NATTER_CQL_HOSTS=$(deploy/cassandra/start.sh)   # stop: deploy/cassandra/stop.sh; or: go tool task test"

// Unavailable ends tb because the Cassandra it needs cannot be had (why
// says what is missing): a failure under CI, where the database is part of
// the job, and a loud skip elsewhere.
func Unavailable(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatal("CI: " + why)
	}
	tb.Log("SKIPPED (no database): " + why)
	tb.Skip("SKIPPED (no database): " + why)
}

// Hosts returns the contact points of NATTER_CQL_HOSTS, or ends tb by
// Unavailable when it is not set.
func Hosts(tb testing.TB) []string {
	tb.Helper()
	v := os.Getenv(EnvHosts)
	if v == "" {
		Unavailable(tb, EnvHosts+" is not set: this test needs a real Cassandra/ScyllaDB. Start one with:\n\t"+StartCommand)
	}
	return strings.Split(v, ",")
}

// Config returns a Config on Hosts for a fresh keyspace, prefix followed
// by random hex, that is dropped when tb ends. It is not created: Migrate
// does that. bucket is the bucket size (0: the default).
func Config(tb testing.TB, prefix string, bucket uint64) scyllastore.Config {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	cfg := scyllastore.Config{
		Hosts:      Hosts(tb),
		Keyspace:   prefix + hex.EncodeToString(b[:]),
		BucketSize: bucket,
		Timeout:    20 * time.Second, // schema changes are slow on a busy test node
	}
	tb.Cleanup(func() { DropKeyspace(tb, cfg) })
	return cfg
}

// Open migrates cfg's keyspace and opens a store on it, closed when tb
// ends.
func Open(tb testing.TB, cfg scyllastore.Config) *scyllastore.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := scyllastore.Migrate(ctx, cfg); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	s, err := scyllastore.New(ctx, cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// DropKeyspace drops cfg's keyspace. A failure is only logged: a
// keyspace left behind in a test database harms no test.
func DropKeyspace(tb testing.TB, cfg scyllastore.Config) {
	cluster := gocql.NewCluster(cfg.Hosts...)
	cluster.Timeout = 30 * time.Second
	session, err := cluster.CreateSession()
	if err != nil {
		tb.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
		return
	}
	defer session.Close()
	if err := session.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).Exec(); err != nil {
		tb.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
	}
}
