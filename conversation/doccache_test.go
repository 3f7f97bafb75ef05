package conversation

import (
	"context"
	"errors"
	"slices"
	"testing"

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

func TestDocCacheBoundedByMembers(t *testing.T) {
	c := docCache{max: 5}
	c.put("a", 1, &Doc{Members: []string{"x", "y", "z"}})
	c.put("b", 1, &Doc{Members: []string{"x", "y"}})
	c.put("c", 1, &Doc{Members: []string{"x"}})
	if c.members > 5 {
		t.Fatalf("cache holds %d members, max 5", c.members)
	}
	c.put("c", 3, &Doc{Members: []string{"x", "y"}})
	c.put("c", 2, &Doc{Members: []string{"x"}})
	if got := c.m["c"].rev; got != 3 {
		t.Fatalf("cache kept revision %d of c, want the newest, 3", got)
	}
}
