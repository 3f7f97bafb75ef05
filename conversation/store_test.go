package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// store is a Store over a fresh JetStream, with the JetStream to read the
// CHAT stream from.
func store(t testing.TB, cfg Config) (*Store, jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, cfg, js)
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

// lastEvent returns conv's newest membership event in CHAT and its seq,
// or a zero seq when there is none.
func lastEvent(t *testing.T, js jetstream.JetStream, conv string) (Event, uint64) {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, schema.LayoutOf(st.CachedInfo().Config).StoredMember(conv))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Event{}, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev, m.Sequence
}

// checkMembers fails unless the document, the member keys and the user
// indexes all say exactly that want are conv's members: the document in
// join order, a member key and an index entry for each member, none for
// anyone else of users.
func checkMembers(t *testing.T, s *Store, conv string, want, users []string) {
	t.Helper()
	ctx := context.Background()
	d, err := s.Get(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Members, want) {
		t.Errorf("document members %v, want %v", d.Members, want)
	}
	for _, u := range users {
		in := slices.Contains(want, u)
		key, err := s.IsMember(ctx, conv, u)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := s.UserConversations(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if key != in || slices.Contains(idx, conv) != in {
			t.Errorf("%s: member key %v, index %v; a member: %v", u, key, idx, in)
		}
	}
}

// A group through a sequence of membership changes: who may do what, the
// document, member keys and indexes after each, and the event announced
// for each change (none for a refused one).
func TestGroupMembership(t *testing.T) {
	ctx := context.Background()
	s, js := store(t, Config{})
	users := []string{"alice", "bob", "carol", "dave", "erin"}
	as := func(u string) Actor { return Actor{User: u, Session: u + "-s"} }
	g, err := s.CreateGroup(ctx, as("alice"), "team", []string{"bob", "alice", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Owner != "alice" || g.Kind != "group" || !strings.HasPrefix(g.Conv, "g_") {
		t.Fatalf("created %+v", g)
	}
	checkMembers(t, s, g.Conv, []string{"alice", "bob"}, users)
	ev, seq := lastEvent(t, js, g.Conv)
	if ev.Action != ActionCreated || !slices.Equal(ev.Users, []string{"alice", "bob"}) || ev.Origin != "alice-s" {
		t.Fatalf("create announced %+v", ev)
	}

	steps := []struct {
		name    string
		do      func() error
		err     error
		members []string
		owner   string
		event   *Event // nil: no event
	}{
		{"any member adds", func() error {
			_, added, err := s.AddMembers(ctx, as("bob"), g.Conv, []string{"carol", "alice", "dave", "carol"})
			if err == nil && !slices.Equal(added, []string{"carol", "dave"}) {
				t.Errorf("added %v, want [carol dave]", added)
			}
			return err
		}, nil, []string{"alice", "bob", "carol", "dave"}, "alice",
			&Event{Action: ActionAdded, Conv: g.Conv, Users: []string{"carol", "dave"}, By: "bob", Origin: "bob-s"}},
		{"adding members again changes nothing", func() error {
			_, added, err := s.AddMembers(ctx, as("bob"), g.Conv, []string{"carol"})
			if len(added) != 0 {
				t.Errorf("added %v again", added)
			}
			return err
		}, nil, []string{"alice", "bob", "carol", "dave"}, "alice", nil},
		{"a non-member cannot add", func() error {
			_, _, err := s.AddMembers(ctx, as("erin"), g.Conv, []string{"erin"})
			return err
		}, ErrForbidden, []string{"alice", "bob", "carol", "dave"}, "alice", nil},
		{"adding nobody is a bad request", func() error {
			_, _, err := s.AddMembers(ctx, as("alice"), g.Conv, nil)
			return err
		}, ErrBadRequest, []string{"alice", "bob", "carol", "dave"}, "alice", nil},
		{"a plain member removes nobody else", func() error {
			_, err := s.RemoveMember(ctx, as("bob"), g.Conv, "carol")
			return err
		}, ErrRefused, []string{"alice", "bob", "carol", "dave"}, "alice", nil},
		{"the owner removes", func() error {
			_, err := s.RemoveMember(ctx, as("alice"), g.Conv, "carol")
			return err
		}, nil, []string{"alice", "bob", "dave"}, "alice",
			&Event{Action: ActionRemoved, Conv: g.Conv, Users: []string{"carol"}, By: "alice", Origin: "alice-s"}},
		{"removing a non-member", func() error {
			_, err := s.RemoveMember(ctx, as("alice"), g.Conv, "carol")
			return err
		}, ErrNotFound, []string{"alice", "bob", "dave"}, "alice", nil},
		{"the removed user is refused", func() error {
			_, _, err := s.AddMembers(ctx, as("carol"), g.Conv, []string{"carol"})
			return err
		}, ErrForbidden, []string{"alice", "bob", "dave"}, "alice", nil},
		{"the owner leaves: the longest standing member owns it", func() error {
			_, err := s.Leave(ctx, as("alice"), g.Conv)
			return err
		}, nil, []string{"bob", "dave"}, "bob",
			&Event{Action: ActionRemoved, Conv: g.Conv, Users: []string{"alice"}, By: "alice", Origin: "alice-s"}},
		{"a member adds the old owner back", func() error {
			_, _, err := s.AddMembers(ctx, as("dave"), g.Conv, []string{"alice"})
			return err
		}, nil, []string{"bob", "dave", "alice"}, "bob",
			&Event{Action: ActionAdded, Conv: g.Conv, Users: []string{"alice"}, By: "dave", Origin: "dave-s"}},
	}
	for _, st := range steps {
		err := st.do()
		if !errors.Is(err, st.err) || (st.err == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.err)
		}
		checkMembers(t, s, g.Conv, st.members, users)
		d, err := s.Get(ctx, g.Conv)
		if err != nil {
			t.Fatal(err)
		}
		if d.Owner != st.owner {
			t.Errorf("%s: owner %q, want %q", st.name, d.Owner, st.owner)
		}
		ev, next := lastEvent(t, js, g.Conv)
		switch {
		case st.event == nil && next != seq:
			t.Errorf("%s: announced %+v", st.name, ev)
		case st.event != nil && (next == seq || ev.Action != st.event.Action || ev.By != st.event.By ||
			ev.Origin != st.event.Origin || ev.Conv != st.event.Conv || !slices.Equal(ev.Users, st.event.Users)):
			t.Errorf("%s: announced %+v (seq %d after %d), want %+v", st.name, ev, next, seq, *st.event)
		}
		seq = next
	}
}

// A direct conversation has one id for the pair, whoever creates it, and
// no adds or removes.
func TestDirectConversation(t *testing.T) {
	ctx := context.Background()
	s, js := store(t, Config{})
	alice, bob := Actor{User: "alice", Session: "a"}, Actor{User: "bob", Session: "b"}
	d, created, err := s.CreateDirect(ctx, alice, "bob")
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	if d.Kind != "direct" || !strings.HasPrefix(d.Conv, "d_") || d.Owner != "" {
		t.Fatalf("created %+v", d)
	}
	again, created, err := s.CreateDirect(ctx, bob, "alice")
	if err != nil || created || again.Conv != d.Conv {
		t.Fatalf("bob's create: %+v, created %v, %v; want %s", again, created, err, d.Conv)
	}
	checkMembers(t, s, d.Conv, []string{"alice", "bob"}, []string{"alice", "bob", "carol"})
	if ev, seq := lastEvent(t, js, d.Conv); seq == 0 || ev.Action != ActionCreated {
		t.Fatalf("create announced %+v", ev)
	}
	if _, _, err := s.CreateDirect(ctx, alice, "alice"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("with oneself: %v, want ErrBadRequest", err)
	}
	if _, _, err := s.AddMembers(ctx, alice, d.Conv, []string{"carol"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("add to a direct conversation: %v, want ErrBadRequest", err)
	}
	if _, err := s.Leave(ctx, alice, d.Conv); !errors.Is(err, ErrBadRequest) {
		t.Errorf("leave a direct conversation: %v, want ErrBadRequest", err)
	}
	for _, tc := range []struct{ conv, user string }{{d.Conv, "carol"}, {"d_missing", "alice"}} {
		if _, err := s.GetForMember(ctx, tc.conv, tc.user); !errors.Is(err, ErrForbidden) {
			t.Errorf("GetForMember(%s, %s): %v, want ErrForbidden whether it exists or not", tc.conv, tc.user, err)
		}
	}
	if got, err := s.GetForMember(ctx, d.Conv, "bob"); err != nil || got.Conv != d.Conv {
		t.Errorf("GetForMember for a member: %v, %v", got, err)
	}
	// bob has not accepted alice's request: his presence is not hers to
	// see until he does (consent.go).
	ok, err := s.Shares(ctx, "alice", []string{d.Conv}, "bob")
	if err != nil || ok {
		t.Errorf("alice sees bob's presence through a request: %v, %v", ok, err)
	}
	if _, err := s.Accept(ctx, bob, d.Conv); err != nil {
		t.Fatal(err)
	}
	ok, err = s.Shares(ctx, "alice", []string{d.Conv}, "bob")
	if err != nil || !ok {
		t.Errorf("alice and bob share %s: %v, %v", d.Conv, ok, err)
	}
	ok, err = s.Shares(ctx, "alice", []string{d.Conv}, "carol")
	if err != nil || ok {
		t.Errorf("alice and carol share nothing: %v, %v", ok, err)
	}
}

// The limits of Config refuse a change as a whole.
func TestLimits(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t, Config{MaxMembers: 3, MaxConversations: 2, MaxTitleBytes: 4})
	alice := Actor{User: "alice", Session: "a"}
	if _, err := s.CreateGroup(ctx, alice, "title", nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("long title: %v, want ErrBadRequest", err)
	}
	if _, err := s.CreateGroup(ctx, alice, "", []string{"b", "c", "d"}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("four members: %v, want ErrTooLarge", err)
	}
	g, err := s.CreateGroup(ctx, alice, "", []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddMembers(ctx, alice, g.Conv, []string{"c", "d"}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("add past MaxMembers: %v, want ErrTooLarge", err)
	}
	checkMembers(t, s, g.Conv, []string{"alice", "b"}, []string{"alice", "b", "c", "d"})
	if _, err := s.CreateGroup(ctx, alice, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, alice, "", nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a third conversation: %v, want ErrTooLarge", err)
	}
}

// Devices of one user moving a marker at once never move it back: it ends
// at the furthest seq any of them marked.
func TestMarkReadConcurrent(t *testing.T) {
	ctx := context.Background()
	s, js := store(t, Config{})
	others := make([]*Store, 4)
	for i := range others {
		var err error
		if others[i], err = New(ctx, Config{}, js); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i, o := range others {
		wg.Go(func() {
			for seq := uint64(i + 1); seq <= 100; seq += uint64(len(others)) {
				if _, err := o.MarkRead(ctx, "g_c", "alice", seq); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, err := s.ReadSeq(ctx, "g_c", "alice"); err != nil || got != 100 {
		t.Fatalf("marker %d, %v; want 100", got, err)
	}
	if got, err := s.ReadSeq(ctx, "g_c", "bob"); err != nil || got != 0 {
		t.Fatalf("bob's marker %d, %v; want 0 before any read", got, err)
	}
}

// Every sentinel names its package, as errors.go promises.
func TestErrorsNamePackage(t *testing.T) {
	for _, err := range []error{ErrForbidden, ErrBadRequest, ErrNotFound, ErrConflict, ErrTooLarge} {
		if !strings.HasPrefix(err.Error(), "conversation: ") {
			t.Errorf("%q has no \"conversation: \" prefix", err)
		}
	}
}
