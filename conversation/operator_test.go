package conversation

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/natter-chat/natter/protocol"
)

// An operator adds and removes members of a group it is not in, past a
// user's add_policy and without the owner, through the same change as a
// member's add or remove: document, member keys, indexes and an event
// with no By. Direct conversations still have no add or remove.
func TestOperatorAddRemove(t *testing.T) {
	ctx := context.Background()
	s, js := store(t, Config{})
	users := []string{"alice", "bob", "carol", "dave"}
	g, err := s.CreateGroup(ctx, Actor{User: "alice"}, "team", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAddPolicy(ctx, "carol", protocol.AddPolicyNobody); err != nil {
		t.Fatal(err)
	}
	d, added, err := s.AddAsOperator(ctx, g.Conv, []string{"carol", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(added, []string{"carol"}) || len(d.Invited) != 0 {
		t.Fatalf("operator add: added %v, invited %v", added, d.Invited)
	}
	checkMembers(t, s, g.Conv, []string{"alice", "bob", "carol"}, users)
	if ev, _ := lastEvent(t, js, g.Conv); ev.Action != ActionAdded || !slices.Equal(ev.Users, []string{"carol"}) || ev.By != "" {
		t.Fatalf("operator add announced %+v", ev)
	}

	// bob is not the owner; the operator removes him anyway.
	if _, err := s.RemoveAsOperator(ctx, g.Conv, "bob"); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, s, g.Conv, []string{"alice", "carol"}, users)
	if ev, _ := lastEvent(t, js, g.Conv); ev.Action != ActionRemoved || !slices.Equal(ev.Users, []string{"bob"}) || ev.By != "" {
		t.Fatalf("operator remove announced %+v", ev)
	}
	if _, err := s.RemoveAsOperator(ctx, g.Conv, "dave"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing a non-member: %v, want ErrNotFound", err)
	}
	direct, _, err := s.CreateDirect(ctx, Actor{User: "alice"}, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddAsOperator(ctx, direct.Conv, []string{"dave"}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("adding to a direct conversation: %v, want ErrBadRequest", err)
	}
}
