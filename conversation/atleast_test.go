package conversation

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// staleKV answers Get of one key with an entry read earlier: what a
// replica of an R3 bucket that has not applied the later writes yet
// answers a direct get with.
type staleKV struct {
	jetstream.KeyValue
	old jetstream.KeyValueEntry
}

func (k staleKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if key == k.old.Key() {
		return k.old, nil
	}
	return k.KeyValue.Get(ctx, key)
}

// A reader that met a membership event gets a document with the event's
// change even from a replica behind it: the fan-out, which reloads a
// group's members on the event of a remove, must not deliver the next
// message to the removed member (found with the e2e suite on a 3-node
// cluster, NATTER_E2E_TOPOLOGY=cluster3x4).
func TestGetAtLeastReadsPastAStaleReplica(t *testing.T) {
	s, js := store(t, Config{})
	ctx := context.Background()
	d, err := s.CreateGroup(ctx, Actor{User: "alice"}, "g", []string{"bob", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	old, err := s.kv.Get(ctx, docKey(d.Conv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveMember(ctx, Actor{User: "alice"}, d.Conv, "carol"); err != nil {
		t.Fatal(err)
	}
	ev, _ := lastEvent(t, js, d.Conv)
	if ev.Action != ActionRemoved || ev.Rev == 0 {
		t.Fatalf("last event %+v", ev)
	}
	s.kv = staleKV{KeyValue: s.kv, old: old}
	stale, err := s.Get(ctx, d.Conv)
	if err != nil || !slices.Contains(stale.Members, "carol") {
		t.Fatalf("the stale replica's document %+v, %v: want carol still in it", stale, err)
	}
	for _, rev := range []uint64{ev.Rev, 0} {
		got, err := s.GetAtLeast(ctx, d.Conv, rev)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(got.Members, "carol") || !slices.Contains(got.Members, "bob") {
			t.Fatalf("GetAtLeast(rev %d) members %v: the remove of carol is missing", rev, got.Members)
		}
	}
	// A member cache refreshed on the event uses it.
	c := NewDocCache(CacheConfig{}, s)
	got, err := c.RefreshAtLeast(ctx, d.Conv, ev.Rev)
	if err != nil || slices.Contains(got.Members, "carol") {
		t.Fatalf("RefreshAtLeast: %+v, %v", got, err)
	}
}

// newKV answers Get as a replica that has none of the keys written after
// it was made: not found.
type newKV struct {
	jetstream.KeyValue
	missing map[string]bool
}

func (k newKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if k.missing[key] {
		return nil, jetstream.ErrKeyNotFound
	}
	return k.KeyValue.Get(ctx, key)
}

// With LeaderChecks (the gateway's store) a replica that has not stored a
// conversation or member key written a moment ago does not make the
// conversation missing or its member a stranger (found with
// NATTER_E2E_TOPOLOGY=cluster3x4: an owner's set_role right after the
// create was refused "not a member"). Without it the store answers as
// the replica does.
func TestLeaderChecksSeePastAReplicaWithoutTheKey(t *testing.T) {
	for _, checks := range []bool{true, false} {
		s, _ := store(t, Config{LeaderChecks: checks})
		ctx := context.Background()
		d, err := s.CreateGroup(ctx, Actor{User: "alice"}, "g", []string{"bob"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Block(ctx, "bob", "mallory"); err != nil {
			t.Fatal(err)
		}
		s.kv = newKV{KeyValue: s.kv, missing: map[string]bool{docKey(d.Conv): true, memberKey(d.Conv, "alice"): true, blockKey("bob"): true, userKey("bob"): true}}
		convs, err := s.UserConversations(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if listed := slices.Equal(convs, []string{d.Conv}); listed != checks {
			t.Fatalf("LeaderChecks %v: bob's conversations %v", checks, convs)
		}
		got, gerr := s.Get(ctx, d.Conv)
		member, merr := s.IsMember(ctx, d.Conv, "alice")
		m2, _, m2err := s.Membership(ctx, d.Conv, "alice")
		blocked, _, berr := s.Blocked(ctx, "bob")
		if merr != nil || m2err != nil || berr != nil || (gerr != nil && gerr != ErrNotFound) {
			t.Fatal(gerr, merr, m2err, berr)
		}
		seen := gerr == nil && got.Conv == d.Conv
		if checks != seen || checks != member || checks != m2 || checks != slices.Equal(blocked, []string{"mallory"}) {
			t.Fatalf("LeaderChecks %v: document found %v, member %v/%v, block list %v", checks, seen, member, m2, blocked)
		}
		// A key nobody wrote stays missing.
		if member, err := s.IsMember(ctx, d.Conv, "carol"); err != nil || member {
			t.Fatalf("LeaderChecks %v: carol member %v, %v", checks, member, err)
		}
	}
}

// noDocsKV answers Get of every conversation document not found: a
// replica that has applied none of them yet.
type noDocsKV struct{ jetstream.KeyValue }

func (k noDocsKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if strings.HasPrefix(key, docKey("")) {
		return nil, jetstream.ErrKeyNotFound
	}
	return k.KeyValue.Get(ctx, key)
}

// A group created while the replica answering direct gets has not
// applied its document keeps its members: syncMembers, reading the
// document again after writing the member keys, took "not found" from
// the replica for a deleted group and removed every member's key and
// index entry (found with NATTER_E2E_TOPOLOGY=cluster3x4: a group missing
// from its creator's conversation list).
func TestCreateSeesPastAReplicaWithoutTheDocument(t *testing.T) {
	s, _ := store(t, Config{})
	ctx := context.Background()
	real := s.kv
	s.kv = noDocsKV{real}
	d, err := s.CreateGroup(ctx, Actor{User: "alice"}, "g", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	s.kv = real
	for _, u := range []string{"alice", "bob"} {
		convs, err := s.UserConversations(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		member, err := s.IsMember(ctx, d.Conv, u)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(convs, []string{d.Conv}) || !member {
			t.Fatalf("%s: conversations %v, member %v: want the new group", u, convs, member)
		}
	}
}
