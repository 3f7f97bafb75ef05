package conversation

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// A read marker moved a moment ago is what the user's next list shows,
// even when the replica answering direct gets is behind the move: with
// LeaderChecks (the gateway's store) ReadSeq reads the bucket's leader
// (found with NATTER_E2E_TOPOLOGY=cluster3x4: after marking read and
// reconnecting a user saw the old marker and the messages unread again).
// Without it the store answers as the replica does. A marker nobody wrote
// and one of an erased user (purged) read as 0.
func TestReadSeqReadsPastAStaleReplica(t *testing.T) {
	for _, checks := range []bool{true, false} {
		s, _ := store(t, Config{LeaderChecks: checks})
		ctx := context.Background()
		if _, err := s.MarkRead(ctx, "g_c", "bob", 3); err != nil {
			t.Fatal(err)
		}
		old, err := s.kv.Get(ctx, readKey("g_c", "bob"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkRead(ctx, "g_c", "bob", 7); err != nil {
			t.Fatal(err)
		}
		s.kv = staleKV{KeyValue: s.kv, old: old}
		got, err := s.ReadSeq(ctx, "g_c", "bob")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]uint64{true: 7, false: 3}[checks]; got != want {
			t.Fatalf("LeaderChecks %v: ReadSeq %d, want %d", checks, got, want)
		}
		if got, err := s.ReadSeq(ctx, "g_c", "carol"); err != nil || got != 0 {
			t.Fatalf("LeaderChecks %v: a marker nobody wrote: %d, %v", checks, got, err)
		}
		if err := s.kv.Purge(ctx, readKey("g_c", "bob")); err != nil {
			t.Fatal(err)
		}
		s.kv = s.kv.(staleKV).KeyValue
		if got, err := s.ReadSeq(ctx, "g_c", "bob"); err != nil || got != 0 {
			t.Fatalf("LeaderChecks %v: a purged marker: %d, %v", checks, got, err)
		}
	}
}

// A marker moved while the replica answering direct gets is behind the
// move is moved again: the compare-and-set on the replica's revision
// fails, and with LeaderChecks the next read asks the leader (on a 3-node
// cluster devices of one user reading at once got "internal error": all
// 50 attempts read the same old revision). Without it the replica's
// revision fails every attempt.
func TestMarkReadPastAStaleReplica(t *testing.T) {
	for _, checks := range []bool{true, false} {
		s, js := store(t, Config{LeaderChecks: checks})
		ctx := context.Background()
		if _, err := s.MarkRead(ctx, "g_c", "bob", 3); err != nil {
			t.Fatal(err)
		}
		old, err := s.kv.Get(ctx, readKey("g_c", "bob"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkRead(ctx, "g_c", "bob", 7); err != nil {
			t.Fatal(err)
		}
		// Another gateway's store: it remembers no marker.
		other, err := New(ctx, Config{LeaderChecks: checks}, js)
		if err != nil {
			t.Fatal(err)
		}
		other.kv = staleKV{KeyValue: other.kv, old: old}
		moved, err := other.MarkRead(ctx, "g_c", "bob", 9)
		if checks && (err != nil || !moved) {
			t.Fatalf("LeaderChecks: MarkRead past the stale replica: moved %v, %v", moved, err)
		}
		if !checks && !errors.Is(err, ErrConflict) {
			t.Fatalf("without LeaderChecks: MarkRead: moved %v, %v; want the conflict", moved, err)
		}
		if moved, err := other.MarkRead(ctx, "g_c", "bob", 5); checks && (err != nil || moved) {
			t.Fatalf("LeaderChecks: MarkRead behind the marker: moved %v, %v", moved, err)
		}
	}
}

// Devices of one user on several gateways moving one read marker at once
// on an R3 bucket: every move succeeds or is no move, none fails, and
// the marker ends at the furthest. Concurrent compare-and-sets of one key
// on a replicated stream are refused with error code 10164, not the
// 10071 of one node (schema.IsWrongLastSeq); taken for a failure it was
// an "internal error" (TestReadMarkerConcurrentDevices with
// NATTER_E2E_TOPOLOGY=cluster3x4).
func TestConcurrentMarkReadsOnAClusteredBucket(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_, js := c.Connect(t)
	if err := schema.Ensure(ctx, js, schema.Config{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	const gateways, reads = 6, 40
	var wg sync.WaitGroup
	for g := range gateways {
		_, js := c.Connect(t)
		s, err := New(ctx, Config{LeaderChecks: true}, js)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range reads {
				seq := uint64((i*7+g*13)%reads + 1)
				if _, err := s.MarkRead(ctx, "g_c", "bob", seq); err != nil {
					t.Errorf("gateway %d: MarkRead %d: %v", g, seq, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s, err := New(ctx, Config{LeaderChecks: true}, js)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadSeq(ctx, "g_c", "bob"); err != nil || got != reads {
		t.Fatalf("the marker after the race: %d, %v, want %d", got, err, reads)
	}
}

// LeaderValue reads a key as the leader has it, past a replica behind
// (an erasure's progress record: a run must not start again from an older
// step); a key nobody wrote, or deleted, is nil.
func TestLeaderValue(t *testing.T) {
	s, _ := store(t, Config{})
	ctx := context.Background()
	key := ErasedKey("alice")
	if _, err := s.kv.Put(ctx, key, []byte("one")); err != nil {
		t.Fatal(err)
	}
	old, err := s.kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.kv.Put(ctx, key, []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	s.kv = staleKV{KeyValue: s.kv, old: old}
	if val, got, err := s.LeaderValue(ctx, key); err != nil || string(val) != "two" || got != rev {
		t.Fatalf("LeaderValue = %q rev %d, %v; want two rev %d", val, got, err, rev)
	}
	if val, got, err := s.LeaderValue(ctx, ErasedKey("bob")); err != nil || val != nil || got != 0 {
		t.Fatalf("a key nobody wrote: %q rev %d, %v", val, got, err)
	}
	if err := s.kv.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if val, got, err := s.LeaderValue(ctx, key); err != nil || val != nil || got != 0 {
		t.Fatalf("a deleted key: %q rev %d, %v", val, got, err)
	}
}
