package presence

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/schema"
)

// A user's partition is part of the keys gateways write and of the
// filters the services watch: it must be the same in every process and
// every release. These values are FNV-1a 32 of the id modulo 16.
func TestPartitionStable(t *testing.T) {
	for uid, want := range map[string]int{"alice": 7, "bob": 4, "u1": 3, "cu0": 15, "01JD9ZK3Q4": 0, "": 5} {
		if got := Partition(uid); got != want {
			t.Errorf("Partition(%q) = %d, want %d", uid, got, want)
		}
	}
	if got, want := connKey("alice", "gw1", "s1"), "c.7.alice.gw1.s1"; got != want {
		t.Errorf("connKey = %q, want %q", got, want)
	}
	if got, want := userKey("bob"), "u.4.bob"; got != want {
		t.Errorf("userKey = %q, want %q", got, want)
	}
	// The users of a few hundred ids land in every partition.
	hit := make(map[int]int)
	for i := range 400 {
		hit[Partition(crashUser(i))]++
	}
	for p := range Partitions {
		if hit[p] < 400/Partitions/3 {
			t.Errorf("partition %d got %d of 400 users: %v", p, hit[p], hit)
		}
	}
}

func TestParseUserKey(t *testing.T) {
	tests := []struct {
		key, uid   string
		legacy, ok bool
	}{
		{userKey("alice"), "alice", false, true},
		{legacyUserKey("alice"), "alice", true, true},
		{"u.3.alice", "", false, false}, // not alice's partition
		{"u.x.alice", "", false, false},
		{"u.7.alice.x", "", false, false},
		{connKey("alice", "gw1", "s1"), "", false, false},
	}
	for _, tt := range tests {
		uid, legacy, ok := parseUserKey(tt.key)
		if uid != tt.uid || legacy != tt.legacy || ok != tt.ok {
			t.Errorf("parseUserKey(%q) = %q, %v, %v; want %q, %v, %v", tt.key, uid, legacy, ok, tt.uid, tt.legacy, tt.ok)
		}
	}
}

// A PRESENCE bucket written by the release before partitions keeps
// working: its connection keys (c.<uid>.<gateway>.<session>) and user
// states (u.<uid>) are read, a gateway of that release still writing such
// keys is followed, and Get answers from the old state until the new one
// is written.
func TestServiceReadsKeysFromBeforePartitions(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	put := func(key string, v any) {
		t.Helper()
		data, _ := json.Marshal(v)
		if _, err := e.kv.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Now().Add(-time.Hour).UTC()
	// Before the upgrade: alice online on old-gw, carol was online but
	// her connection is gone, dave offline.
	if _, err := e.js.Publish(ctx, schema.KVKey(schema.BucketPresence, leaseKey("old-gw")), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	put("c.alice.old-gw.s1", Conn{Since: since})
	put("u.alice", State{Online: true, Devices: 1, Since: since})
	put("u.carol", State{Online: true, Devices: 1, Since: since})
	put("u.dave", State{Online: false, LastSeen: since})
	if st := state(t, e.kv, "alice"); !st.Online {
		t.Fatalf("Get before the upgrade's first write: %+v", st)
	}

	all := events(t, e.nc, schema.Presence("*"))
	runService(t, e)
	if ev := next(t, all, "carol", 5*time.Second); ev.Online {
		t.Fatalf("carol, online under the old key with no connection left: %+v", ev)
	}
	none(t, all, "alice", 500*time.Millisecond) // still online: nothing to announce
	waitFor(t, 5*time.Second, "carol's offline recorded under the new key", func() bool {
		return stored(t, e.kv, userKey("carol")) && !state(t, e.kv, "carol").Online
	})
	if st := state(t, e.kv, "alice"); !st.Online || !st.Since.Equal(since) {
		t.Fatalf("alice after the upgrade: %+v", st)
	}

	// The old gateway's user leaves; another of its users arrives.
	if err := e.kv.Purge(ctx, "c.alice.old-gw.s1"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, all, "alice", 5*time.Second); ev.Online {
		t.Fatalf("alice left the old gateway: %+v", ev)
	}
	put("c.erin.old-gw.s1", Conn{Since: time.Now()})
	if ev := next(t, all, "erin", 5*time.Second); !ev.Online {
		t.Fatalf("erin joined the old gateway: %+v", ev)
	}
	// The old gateway dies: its lease goes, and its users with it.
	if err := e.kv.Purge(ctx, leaseKey("old-gw")); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, all, "erin", 5*time.Second); ev.Online {
		t.Fatalf("erin after the old gateway died: %+v", ev)
	}
	waitFor(t, 5*time.Second, "old gateway's key purged", func() bool { return !stored(t, e.kv, "c.erin.old-gw.s1") })
}

// A gateway upgraded under the same id purges the keys its previous
// release left in the old layout, as strays.
func TestTrackerReconcilePurgesOldLayout(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, err := e.kv.Put(ctx, "c.alice.gw1.old", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	tr := newTracker(t, e.js, TrackerConfig{Gateway: "gw1", LeaseTTL: 10 * time.Second})
	if err := tr.Connected(ctx, "bob", "s1", ""); err != nil {
		t.Fatal(err)
	}
	if err := tr.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if stored(t, e.kv, "c.alice.gw1.old") {
		t.Error("old-layout key of this gateway not purged")
	}
	if !stored(t, e.kv, connKey("bob", "gw1", "s1")) {
		t.Error("live connection's key gone")
	}
}
