package scyllastore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/scyllastore"
	"github.com/natter-chat/natter/history/storetest"
	"github.com/natter-chat/natter/protocol"
)

// startCommand is how to get the database these tests need.
const startCommand = "export NATTER_CQL_HOSTS=$(deploy/cassandra/start.sh)   # stop: deploy/cassandra/stop.sh"

// hosts returns the CQL hosts of NATTER_CQL_HOSTS. Without them the test
// fails under CI (env CI set) and is skipped, loudly, elsewhere.
func hosts(t testing.TB) []string {
	t.Helper()
	v := os.Getenv("NATTER_CQL_HOSTS")
	if v == "" {
		msg := "NATTER_CQL_HOSTS is not set: these tests need a real Cassandra/ScyllaDB. Start one with:\n\t" + startCommand
		if os.Getenv("CI") != "" {
			t.Fatal("CI: " + msg)
		}
		t.Skip("SKIPPED (no database): " + msg)
	}
	return strings.Split(v, ",")
}

// config returns a Config for a fresh keyspace (random name) that is
// dropped when the test ends; bucket is the bucket size.
func config(t testing.TB, bucket uint64) scyllastore.Config {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	cfg := scyllastore.Config{
		Hosts:      hosts(t),
		Keyspace:   "natter_test_" + hex.EncodeToString(b[:]),
		BucketSize: bucket,
		Timeout:    20 * time.Second, // schema changes are slow on a busy test node
	}
	t.Cleanup(func() { dropKeyspace(t, cfg) })
	return cfg
}

func dropKeyspace(t testing.TB, cfg scyllastore.Config) {
	cluster := gocql.NewCluster(cfg.Hosts...)
	cluster.Timeout = 30 * time.Second
	session, err := cluster.CreateSession()
	if err != nil {
		t.Errorf("drop keyspace %s: %v", cfg.Keyspace, err)
		return
	}
	defer session.Close()
	if err := session.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).Exec(); err != nil {
		t.Errorf("drop keyspace %s: %v", cfg.Keyspace, err)
	}
}

func migrate(t testing.TB, cfg scyllastore.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := scyllastore.Migrate(ctx, cfg); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
}

func open(t testing.TB, cfg scyllastore.Config) *scyllastore.Store {
	t.Helper()
	s, err := scyllastore.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) history.Store {
		cfg := config(t, storetest.BucketSize)
		migrate(t, cfg)
		return open(t, cfg)
	})
}

func TestMigrateTwice(t *testing.T) {
	cfg := config(t, storetest.BucketSize)
	migrate(t, cfg)
	migrate(t, cfg)
	// Bucket size 0 means "the keyspace's".
	cfg0 := cfg
	cfg0.BucketSize = 0
	migrate(t, cfg0)
	open(t, cfg0)

	other := cfg
	other.BucketSize = 1 << 20
	if err := scyllastore.Migrate(context.Background(), other); !errors.Is(err, scyllastore.ErrBucketSize) {
		t.Errorf("Migrate with another bucket size: %v, want ErrBucketSize", err)
	}
	if _, err := scyllastore.New(context.Background(), other); !errors.Is(err, scyllastore.ErrBucketSize) {
		t.Errorf("New with another bucket size: %v, want ErrBucketSize", err)
	}
}

func TestNotMigrated(t *testing.T) {
	cfg := config(t, storetest.BucketSize)
	if _, err := scyllastore.New(context.Background(), cfg); err == nil {
		t.Fatal("New on a keyspace that does not exist succeeded")
	}
}

// TestRestart checks that a new Store on the same keyspace, as after a
// restart of natter, sees what the old one wrote, edits included.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	cfg := config(t, storetest.BucketSize)
	migrate(t, cfg)
	s := open(t, cfg)
	msgs := []*protocol.Message{
		{Conv: "c", Seq: 3, Sender: "u1", ClientID: "a", TS: "t", Body: []byte(`{"text":"hi"}`)},
		{Conv: "c", Seq: 40, Sender: "u1", ClientID: "b", TS: "t", Body: []byte(`{"text":"later"}`)},
		{Conv: "c", Seq: 41, Sender: "u1", ClientID: "c", TS: "t", Kind: protocol.KindEdit, Ref: 3, Body: []byte(`{"text":"ho"}`)},
	}
	if err := s.Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.After(ctx, "c", 0, 10); !errors.Is(err, scyllastore.ErrClosed) {
		t.Errorf("After on a closed store: %v, want ErrClosed", err)
	}
	s2 := open(t, cfg)
	got, more, err := s2.Before(ctx, "c", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || more || string(got[0].Body) != `{"text":"ho"}` || got[0].EditSeq != 41 {
		t.Fatalf("after restart: %d rows, more=%v, first %+v", len(got), more, got[0])
	}
	if n, err := s2.Last(ctx, "c"); err != nil || n != 41 {
		t.Fatalf("Last after restart = %d, %v", n, err)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []scyllastore.Config{
		{Keyspace: "k"},
		{Hosts: []string{"127.0.0.1"}, Keyspace: "bad-name"},
		{Hosts: []string{"127.0.0.1"}, Keyspace: "k", Consistency: "MOSTLY"},
		{Hosts: []string{"127.0.0.1"}, Keyspace: "k", Replication: scyllastore.Replication{Class: "NetworkTopologyStrategy"}},
	}
	for _, cfg := range cases {
		if err := scyllastore.Migrate(context.Background(), cfg); !errors.Is(err, scyllastore.ErrConfig) {
			t.Errorf("Migrate(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}
