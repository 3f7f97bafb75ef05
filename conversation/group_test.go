package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// items returns the KindEvent items stored in conv's messages, in order.
func items(t *testing.T, js jetstream.JetStream, conv string) []protocol.GroupEvent {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	subj := schema.LayoutOf(st.CachedInfo().Config).StoredMsg(conv)
	cons, err := js.OrderedConsumer(ctx, schema.StreamChat, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []protocol.GroupEvent
	for m := range batch.Messages() {
		var env protocol.Envelope
		if err := json.Unmarshal(m.Data(), &env); err != nil || env.Kind != protocol.KindEvent {
			t.Fatalf("not an event item: %s (%v)", m.Data(), err)
		}
		var ev protocol.GroupEvent
		if err := json.Unmarshal(env.Body, &ev); err != nil || ev.By != env.Sender {
			t.Fatalf("item body %s of %s: %v", env.Body, env.Sender, err)
		}
		out = append(out, ev)
	}
	return out
}

func TestGroupRoles(t *testing.T) {
	s, js := store(t, Config{})
	ctx := context.Background()
	as := func(u string) Actor { return Actor{User: u, Session: u + "-s"} }
	g, err := s.CreateGroup(ctx, as("alice"), "team", []string{"bob", "carol", "dave"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, as("bob"), g.Conv, GroupSettings{Title: ptr("x")}); !errors.Is(err, ErrRefused) {
		t.Fatalf("a plain member updated: %v", err)
	}
	if _, err := s.SetRole(ctx, as("alice"), g.Conv, "bob", protocol.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	// Again: no change, no item.
	if _, err := s.SetRole(ctx, as("alice"), g.Conv, "bob", protocol.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetRole(ctx, as("bob"), g.Conv, "carol", protocol.RoleAdmin); !errors.Is(err, ErrRefused) {
		t.Fatalf("an admin made an admin: %v", err)
	}
	d, err := s.Update(ctx, as("bob"), g.Conv, GroupSettings{Title: ptr("Team"), ReadOnly: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Title != "Team" || !d.ReadOnly || d.MayPost("carol") || !d.MayPost("bob") || !d.MayPost("alice") {
		t.Fatalf("after update %+v", d)
	}
	if ev, _ := lastEvent(t, js, g.Conv); ev.Action != ActionUpdated || ev.By != "bob" || len(ev.Items) != 2 {
		t.Fatalf("event %+v", ev)
	}
	// Admins remove plain members, not the owner or other admins.
	if _, err := s.SetRole(ctx, as("alice"), g.Conv, "carol", protocol.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "carol"} {
		if _, err := s.RemoveMember(ctx, as("bob"), g.Conv, u); !errors.Is(err, ErrRefused) {
			t.Fatalf("admin bob removed %s: %v", u, err)
		}
	}
	if _, err := s.Ban(ctx, as("bob"), g.Conv, "dave"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMembers(ctx, as("carol"), g.Conv, []string{"dave"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("a banned user was added: %v", err)
	}
	if banned, err := s.Banned(ctx, g.Conv, "carol"); err != nil || !slices.Equal(banned, []string{"dave"}) {
		t.Fatalf("banned %v, %v", banned, err)
	}
	// The owner leaves: bob, the earliest admin, takes over.
	d, err = s.Leave(ctx, as("alice"), g.Conv)
	if err != nil {
		t.Fatal(err)
	}
	if d.Owner != "bob" || !slices.Equal(d.Admins, []string{"carol"}) || d.Role("bob") != protocol.RoleOwner {
		t.Fatalf("after the owner left: owner %s admins %v", d.Owner, d.Admins)
	}
	if _, err := s.Transfer(ctx, as("bob"), g.Conv, "carol"); err != nil {
		t.Fatal(err)
	}
	d, err = s.Get(ctx, g.Conv)
	if err != nil {
		t.Fatal(err)
	}
	if d.Owner != "carol" || !slices.Equal(d.Admins, []string{"bob"}) {
		t.Fatalf("after transfer: owner %s admins %v", d.Owner, d.Admins)
	}
	var got []string
	for _, ev := range items(t, js, g.Conv) {
		got = append(got, ev.Event+":"+ev.By+":"+ev.User)
	}
	want := []string{"role_changed:alice:bob", "renamed:bob:", "read_only:bob:", "role_changed:alice:carol",
		"banned:bob:dave", "transferred:alice:bob", "transferred:bob:carol"}
	if !slices.Equal(got, want) {
		t.Fatalf("items %v, want %v", got, want)
	}
}

// TestGroupItemsStoredOnce: finishing a change again (a retry, a reader's
// repair) stores its items once.
func TestGroupItemsStoredOnce(t *testing.T) {
	s, js := store(t, Config{})
	ctx := context.Background()
	g, err := s.CreateGroup(ctx, Actor{User: "alice"}, "team", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Update(ctx, Actor{User: "alice"}, g.Conv, GroupSettings{Topic: ptr("t")})
	if err != nil {
		t.Fatal(err)
	}
	_, rev, err := s.get(ctx, g.Conv)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.complete(ctx, d, rev); err != nil {
		t.Fatal(err)
	}
	if got := items(t, js, g.Conv); len(got) != 1 || *got[0].Topic != "t" {
		t.Fatalf("items %+v", got)
	}
}

func ptr[T any](v T) *T { return &v }
