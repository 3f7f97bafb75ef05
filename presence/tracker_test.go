package presence

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestParseConnKey(t *testing.T) {
	tests := []struct {
		key, uid, gw string
		ok           bool
	}{
		{connKey("alice", "gw1", "s1"), "alice", "gw1", true},
		{"c.alice.gw1", "", "", false},
		{"c.alice.gw1.s1.x", "", "", false},
		{leaseKey("gw1"), "", "", false},
		{userKey("alice"), "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			uid, gw, ok := parseConnKey(tt.key)
			if uid != tt.uid || gw != tt.gw || ok != tt.ok {
				t.Errorf("parseConnKey(%q) = %q, %q, %v; want %q, %q, %v", tt.key, uid, gw, ok, tt.uid, tt.gw, tt.ok)
			}
		})
	}
}

// A purge that fails when a connection closes is retried until the key is
// gone: a closed connection must not keep its user online.
func TestTrackerRetriesFailedPurge(t *testing.T) {
	e := setup(t)
	fj := newFaultJS(t, e)
	tr := newTracker(t, fj, TrackerConfig{Gateway: "gw1", LeaseTTL: 10 * time.Second})
	ctx := context.Background()
	key := connKey("alice", "gw1", "s1")
	if err := tr.Connected(ctx, "alice", "s1", "phone"); err != nil {
		t.Fatal(err)
	}
	if !stored(t, e.kv, key) {
		t.Fatal("connection key not written")
	}
	fj.kv.failDeletes.Store(3)
	if err := tr.Disconnected(ctx, "alice", "s1"); err == nil {
		t.Fatal("Disconnected hid the failed purge")
	}
	waitFor(t, 5*time.Second, "closed connection's key purged by the retries", func() bool {
		return !stored(t, e.kv, key)
	})
	if n := fj.kv.failDeletes.Load(); n != 0 {
		t.Errorf("%d injected failures left: the purge was not retried through them", n)
	}
}

// After a lapse of the lease the tracker writes its keys again. A
// connection that closes while that rewrite is in flight must stay
// offline: the rewrite must not resurrect its key.
func TestTrackerRewriteRacingCloseDoesNotResurrect(t *testing.T) {
	e := setup(t)
	fj := newFaultJS(t, e)
	tr := newTracker(t, fj, TrackerConfig{Gateway: "gw1", LeaseTTL: time.Second})
	ctx := context.Background()
	key := connKey("alice", "gw1", "s1")
	if err := tr.Connected(ctx, "alice", "s1", "phone"); err != nil {
		t.Fatal(err)
	}
	h := fj.kv.holdPut(key)
	fj.failLease.Store(true)
	time.Sleep(1500 * time.Millisecond) // longer than the lease
	fj.failLease.Store(false)
	select {
	case <-h.held:
	case <-time.After(5 * time.Second):
		t.Fatal("no rewrite after the lease lapsed")
	}
	// The rewrite read alice's connection as live; she leaves now.
	if err := tr.Disconnected(ctx, "alice", "s1"); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	<-h.done
	waitFor(t, 2*time.Second, "closed connection's key gone after the racing rewrite", func() bool {
		return !stored(t, e.kv, key)
	})
	// And it stays gone.
	time.Sleep(300 * time.Millisecond)
	if stored(t, e.kv, key) {
		t.Fatal("closed connection's key came back")
	}
}

// The reconcile purges this gateway's keys that have no live connection
// and writes back the live ones that went missing; it leaves other
// gateways' keys alone.
func TestTrackerReconcile(t *testing.T) {
	e := setup(t)
	tr := newTracker(t, e.js, TrackerConfig{Gateway: "gw1", LeaseTTL: 10 * time.Second, ReconcileEvery: 200 * time.Millisecond})
	ctx := context.Background()
	if err := tr.Connected(ctx, "alice", "s1", "phone"); err != nil {
		t.Fatal(err)
	}
	live, stray, other := connKey("alice", "gw1", "s1"), connKey("ghost", "gw1", "s9"), connKey("bob", "gw2", "s2")
	for _, k := range []string{stray, other} {
		if _, err := e.kv.Put(ctx, k, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.kv.Purge(ctx, live); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "stray purged and live key written back", func() bool {
		return !stored(t, e.kv, stray) && stored(t, e.kv, live)
	})
	if !stored(t, e.kv, other) {
		t.Fatal("another gateway's key was purged")
	}
}

// Closed connections leave no tombstones: after many connects and
// disconnects the bucket holds only the lease once the purge markers
// expire, while a watcher still sees every close.
func TestTrackerPurgesLeaveNoTombstones(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := e.kv.WatchFiltered(ctx, []string{connPrefix + ">"}, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	tr := newTracker(t, e.js, TrackerConfig{Gateway: "gw1", LeaseTTL: 10 * time.Second})
	const n = 50
	for i := range n {
		s := fmt.Sprintf("s%d", i)
		if err := tr.Connected(ctx, "alice", s, ""); err != nil {
			t.Fatal(err)
		}
		if err := tr.Disconnected(ctx, "alice", s); err != nil {
			t.Fatal(err)
		}
	}
	for closes := 0; closes < n; {
		select {
		case u := <-w.Updates():
			if u != nil && u.Operation() != jetstream.KeyValuePut {
				closes++
			}
		case <-ctx.Done():
			t.Fatalf("a watcher saw %d of %d closes", closes, n)
		}
	}
	waitFor(t, 10*time.Second, "bucket back to the lease alone", func() bool {
		st, err := e.kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Values() <= 1
	})
}
