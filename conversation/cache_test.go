package conversation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// GetShared decodes a document once per revision and never serves an old
// revision after a change.
func TestGetSharedFollowsRevisions(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(ctx, Config{}, js) // another process changes it
	if err != nil {
		t.Fatal(err)
	}
	alice := Actor{User: "alice", Session: "s1"}
	g, err := s.CreateGroup(ctx, alice, "t", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	d1, err := s.GetShared(ctx, g.Conv)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := s.GetShared(ctx, g.Conv)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Error("the same revision was decoded twice")
	}
	if _, _, err := other.AddMembers(ctx, alice, g.Conv, []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	d3, err := s.GetShared(ctx, g.Conv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d3.Members, "carol") || slices.Contains(d1.Members, "carol") {
		t.Fatalf("after add_member: %v (before: %v)", d3.Members, d1.Members)
	}
	if _, err := s.GetShared(ctx, "g_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing conversation: %v, want ErrNotFound", err)
	}
}

// counting is a Source that counts its reads.
type counting struct {
	Source
	reads int
}

func (c *counting) Get(ctx context.Context, conv string) (*Doc, error) {
	c.reads++
	return c.Source.Get(ctx, conv)
}

// A cached member list is served until its TTL, Refresh and Drop make the
// next read see the current members, and a failed read changes nothing.
func TestMemberCacheFollowsEvents(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	alice := Actor{User: "alice", Session: "s1"}
	g, err := s.CreateGroup(ctx, alice, "t", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	src := &counting{Source: s}
	c := NewMemberCache(CacheConfig{TTL: time.Minute, Now: func() time.Time { return now }}, src,
		func(d *Doc) []string { return d.SortedMembers() })
	get := func(name string, want []string, reads int) {
		t.Helper()
		got, err := c.Get(ctx, g.Conv)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got, want) || src.reads != reads {
			t.Fatalf("%s: members %v after %d reads, want %v after %d", name, got, src.reads, want, reads)
		}
	}
	get("first read", []string{"alice", "bob"}, 1)
	if _, _, err := s.AddMembers(ctx, alice, g.Conv, []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	get("cached within the TTL", []string{"alice", "bob"}, 1)
	now = now.Add(time.Minute)
	get("past the TTL", []string{"alice", "bob", "carol"}, 2)

	if _, err := s.RemoveMember(ctx, alice, g.Conv, "bob"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Refresh(ctx, g.Conv); err != nil || !slices.Equal(got, []string{"alice", "carol"}) {
		t.Fatalf("Refresh after remove_member: %v, %v", got, err)
	}
	get("refreshed", []string{"alice", "carol"}, 3)
	if _, err := s.Leave(ctx, Actor{User: "carol", Session: "s2"}, g.Conv); err != nil {
		t.Fatal(err)
	}
	c.Drop(g.Conv)
	get("dropped", []string{"alice"}, 4)

	if _, err := c.Get(ctx, "g_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing conversation: %v, want ErrNotFound", err)
	}
	if _, ok := c.m["g_missing"]; ok {
		t.Fatal("a failed read was cached")
	}
}

// The cache stays within both bounds, conversations and members, and
// counts the members it holds exactly.
func TestMemberCacheBounded(t *testing.T) {
	doc := func(n int) *Doc {
		d := &Doc{}
		for i := range n {
			d.Members = append(d.Members, fmt.Sprint("u", i))
		}
		return d
	}
	for _, tc := range []struct {
		name          string
		size, members int
		docMembers    int
	}{
		{"by conversations", 10, 1000, 2},
		{"by members", 1000, 50, 7},
		{"one conversation", 1, 1000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewDocCache(CacheConfig{Size: tc.size, Members: tc.members}, nil)
			for i := range 100 {
				c.put(fmt.Sprint("c", i), 0, doc(tc.docMembers))
				total := 0
				for _, e := range c.m {
					total += e.members
				}
				if len(c.m) > tc.size || c.members > tc.members || total != c.members {
					t.Fatalf("after %d puts: %d conversations, %d members (counted %d); bounds %d and %d",
						i+1, len(c.m), total, c.members, tc.size, tc.members)
				}
			}
			if _, ok := c.m["c99"]; !ok {
				t.Fatal("the newest entry was evicted")
			}
			c.Drop("c99")
			if _, ok := c.m["c99"]; ok {
				t.Fatal("Drop kept the entry")
			}
		})
	}
}

// A document read at an older revision does not replace a newer one.
func TestMemberCacheKeepsNewestRevision(t *testing.T) {
	c := NewDocCache(CacheConfig{}, nil)
	c.put("c", 3, &Doc{Members: []string{"x", "y"}})
	c.put("c", 2, &Doc{Members: []string{"x"}})
	if d, ok := c.atRevision("c", 3); !ok || len(d.Members) != 2 {
		t.Fatalf("cache lost revision 3 of c: %v %v", d, ok)
	}
	if c.members != 2 {
		t.Fatalf("cache counts %d members, want 2", c.members)
	}
}

func newStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
