package scyllastore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/scyllastore"
	"github.com/natter-chat/natter/history/scyllastore/scyllatest"
	"github.com/natter-chat/natter/history/storetest"
	"github.com/natter-chat/natter/protocol"
)

// config returns a Config for a fresh keyspace that is dropped when the
// test ends; bucket is the bucket size.
func config(t testing.TB, bucket uint64) scyllastore.Config {
	t.Helper()
	return scyllatest.Config(t, "natter_test_", bucket)
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
