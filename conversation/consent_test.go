package conversation

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/natter-chat/natter/protocol"
)

func TestDirectIsARequestUntilAccepted(t *testing.T) {
	s, js := store(t, Config{})
	ctx := context.Background()
	d, created, err := s.CreateDirect(ctx, Actor{User: "mallory"}, "alice")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if got := d.StateFor("alice"); got != protocol.ConvStateRequest {
		t.Errorf("alice's state %q, want request", got)
	}
	if got := d.StateFor("mallory"); got != protocol.ConvStatePending {
		t.Errorf("mallory's state %q, want pending", got)
	}
	// The member key tells the send path, which reads it anyway.
	for u, want := range map[string]bool{"alice": true, "mallory": false} {
		member, pending, err := s.Membership(ctx, d.Conv, u)
		if err != nil || !member || pending != want {
			t.Errorf("Membership(%s) = %v %v %v, want member, pending %v", u, member, pending, err, want)
		}
	}
	// alice's presence does not flow to mallory; mallory's does to alice.
	if ok, _ := s.Shares(ctx, "mallory", []string{d.Conv}, "alice"); ok {
		t.Error("mallory sees alice's presence through an unaccepted request")
	}
	if ok, _ := s.Shares(ctx, "alice", []string{d.Conv}, "mallory"); !ok {
		t.Error("alice does not see the requester's presence")
	}
	if ok, _ := s.IsContact(ctx, "alice", "mallory"); ok {
		t.Error("an unaccepted request makes contacts")
	}
	// Accepting is an event and turns the key and the document normal.
	d, err = s.Accept(ctx, Actor{User: "alice"}, d.Conv)
	if err != nil {
		t.Fatal(err)
	}
	if d.StateFor("alice") != "" || d.StateFor("mallory") != "" {
		t.Errorf("states after accept: %q %q", d.StateFor("alice"), d.StateFor("mallory"))
	}
	if _, pending, _ := s.Membership(ctx, d.Conv, "alice"); pending {
		t.Error("alice's key still says request")
	}
	if ev, _ := lastEvent(t, js, d.Conv); ev.Action != ActionAccepted || !slices.Equal(ev.Users, []string{"alice"}) {
		t.Errorf("last event %+v, want accepted by alice", ev)
	}
	if ok, _ := s.IsContact(ctx, "mallory", "alice"); !ok {
		t.Error("an accepted direct conversation does not make contacts")
	}
	// Survives a restart: a new store over the same bucket reads it.
	s2, err := New(ctx, Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	if d2, _ := s2.Get(ctx, d.Conv); len(d2.Pending) != 0 {
		t.Errorf("pending after restart: %v", d2.Pending)
	}
}

func TestDeclineRemovesTheRequestForGood(t *testing.T) {
	s, _ := store(t, Config{})
	ctx := context.Background()
	d, _, err := s.CreateDirect(ctx, Actor{User: "mallory"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Decline(ctx, Actor{User: "alice"}, d.Conv); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, s, d.Conv, []string{"mallory"}, []string{"alice", "mallory"})
	if _, err := s.GetForViewer(ctx, d.Conv, "alice"); !errors.Is(err, ErrForbidden) {
		t.Errorf("alice still sees the declined request: %v", err)
	}
	// The requester is not told: the conversation still shows two.
	d, _ = s.Get(ctx, d.Conv)
	if c := d.ProtocolFor("mallory", 100); c.MemberCount != 2 || c.State != protocol.ConvStatePending {
		t.Errorf("mallory sees %+v", c)
	}
	// The requester starting it again does not bring it back.
	if _, _, err := s.CreateDirect(ctx, Actor{User: "mallory"}, "alice"); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, s, d.Conv, []string{"mallory"}, []string{"alice"})
	// Declining twice is fine; accepting what one declined is not.
	if err := s.Decline(ctx, Actor{User: "alice"}, d.Conv); err != nil {
		t.Errorf("decline again: %v", err)
	}
	if _, err := s.Accept(ctx, Actor{User: "alice"}, d.Conv); !errors.Is(err, ErrForbidden) {
		t.Errorf("accept after decline: %v", err)
	}
	// alice starting it herself rejoins it, accepted.
	d, _, err = s.CreateDirect(ctx, Actor{User: "alice"}, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	checkMembers(t, s, d.Conv, []string{"mallory", "alice"}, []string{"alice", "mallory"})
	if d.StateFor("alice") != "" {
		t.Errorf("alice's state after rejoining: %q", d.StateFor("alice"))
	}
}

func TestAddPolicyContactsRefusesStrangers(t *testing.T) {
	s, _ := store(t, Config{})
	ctx := context.Background()
	if st, _ := s.Settings(ctx, "alice"); st.AddPolicy != protocol.AddPolicyEveryone {
		t.Errorf("default add_policy %q", st.AddPolicy)
	}
	if _, err := s.SetAddPolicy(ctx, "alice", "friends"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("unknown policy: %v", err)
	}
	if _, err := s.SetAddPolicy(ctx, "alice", protocol.AddPolicyContacts); err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGroup(ctx, Actor{User: "mallory"}, "spam", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.AddMembers(ctx, Actor{User: "mallory"}, g.Conv, []string{"alice"})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "alice accepts adds only from contacts") {
		t.Errorf("add of a stranger: %v", err)
	}
	if _, err := s.CreateGroup(ctx, Actor{User: "mallory"}, "spam", []string{"alice"}); !errors.Is(err, ErrRefused) {
		t.Errorf("create with a stranger: %v", err)
	}
	checkMembers(t, s, g.Conv, []string{"mallory"}, []string{"alice"})
	// A contact may.
	d, _, err := s.CreateDirect(ctx, Actor{User: "bob"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(ctx, Actor{User: "alice"}, d.Conv); err != nil {
		t.Fatal(err)
	}
	g2, err := s.CreateGroup(ctx, Actor{User: "bob"}, "friends", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	checkMembers(t, s, g2.Conv, []string{"bob", "alice"}, []string{"alice"})
}

func TestAddPolicyNobodyInvites(t *testing.T) {
	s, js := store(t, Config{})
	ctx := context.Background()
	if _, err := s.SetAddPolicy(ctx, "alice", protocol.AddPolicyNobody); err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGroup(ctx, Actor{User: "bob"}, "team", []string{"carol"})
	if err != nil {
		t.Fatal(err)
	}
	_, added, invited, err := s.AddOrInvite(ctx, Actor{User: "bob"}, g.Conv, []string{"alice", "dave"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(added, []string{"dave"}) || !slices.Equal(invited, []string{"alice"}) {
		t.Fatalf("added %v invited %v", added, invited)
	}
	checkMembers(t, s, g.Conv, []string{"bob", "carol", "dave"}, []string{"dave"})
	if ok, _ := s.IsMember(ctx, g.Conv, "alice"); ok {
		t.Error("an invited user has a member key")
	}
	if _, err := s.GetForMember(ctx, g.Conv, "alice"); !errors.Is(err, ErrForbidden) {
		t.Errorf("an invited user reads the group: %v", err)
	}
	if ev, _ := lastEvent(t, js, g.Conv); !slices.Equal(ev.Invited, []string{"alice"}) {
		t.Errorf("event %+v does not list the invitation", ev)
	}
	// The invitation is in alice's list, as an invitation.
	ids, _ := s.UserConversations(ctx, "alice")
	if !slices.Contains(ids, g.Conv) {
		t.Errorf("alice's index %v lacks the invitation", ids)
	}
	v, err := s.GetForViewer(ctx, g.Conv, "alice")
	if err != nil || v.StateFor("alice") != protocol.ConvStateInvited {
		t.Fatalf("alice's view: %v %v", v, err)
	}
	// Inviting again changes nothing; a repair of the group keeps it.
	if _, added, invited, err := s.AddOrInvite(ctx, Actor{User: "bob"}, g.Conv, []string{"alice"}); err != nil || added != nil || invited != nil {
		t.Errorf("invite again: %v %v %v", added, invited, err)
	}
	if ids, _ := s.UserConversations(ctx, "alice"); !slices.Contains(ids, g.Conv) {
		t.Error("a repeated add dropped the invitation from the index")
	}
	// Accepting makes her a member, announced as added.
	if _, err := s.Accept(ctx, Actor{User: "alice"}, g.Conv); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, s, g.Conv, []string{"bob", "carol", "dave", "alice"}, []string{"alice"})
	if ev, _ := lastEvent(t, js, g.Conv); ev.Action != ActionAdded || !slices.Equal(ev.Users, []string{"alice"}) {
		t.Errorf("event %+v, want alice added", ev)
	}
	// Declining an invitation drops it from the list.
	g2, err := s.CreateGroup(ctx, Actor{User: "bob"}, "other", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g2.Invited, []string{"alice"}) {
		t.Fatalf("create invited %v", g2.Invited)
	}
	if err := s.Decline(ctx, Actor{User: "alice"}, g2.Conv); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.UserConversations(ctx, "alice"); slices.Contains(ids, g2.Conv) {
		t.Error("a declined invitation stays in the index")
	}
	if _, err := s.GetForViewer(ctx, g2.Conv, "alice"); !errors.Is(err, ErrForbidden) {
		t.Errorf("declined invitation still visible: %v", err)
	}
}

func TestHideRemembersTheSeq(t *testing.T) {
	s, _ := store(t, Config{})
	ctx := context.Background()
	g, err := s.CreateGroup(ctx, Actor{User: "bob"}, "team", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Hide(ctx, g.Conv, "mallory", 3); !errors.Is(err, ErrForbidden) {
		t.Errorf("a non-member hid it: %v", err)
	}
	if err := s.Hide(ctx, g.Conv, "alice", 7); err != nil {
		t.Fatal(err)
	}
	ids, hidden, err := s.UserList(ctx, "alice")
	if err != nil || !slices.Contains(ids, g.Conv) || hidden[g.Conv] != 7 {
		t.Fatalf("UserList = %v %v %v", ids, hidden, err)
	}
	// Leaving the group drops the hidden entry with the index entry.
	if _, err := s.Leave(ctx, Actor{User: "alice"}, g.Conv); err != nil {
		t.Fatal(err)
	}
	if _, hidden, _ := s.UserList(ctx, "alice"); len(hidden) != 0 {
		t.Errorf("hidden after leaving: %v", hidden)
	}
}

// The owner's remove_member of an invited user withdraws the invitation:
// it leaves the document and the invitee's list, announced as withdrawn;
// nobody else may withdraw it, and withdrawing again is not_found.
func TestOwnerWithdrawsAnInvitation(t *testing.T) {
	s, js := store(t, Config{})
	ctx := context.Background()
	if _, err := s.SetAddPolicy(ctx, "alice", protocol.AddPolicyNobody); err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGroup(ctx, Actor{User: "bob"}, "team", []string{"carol", "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Invited, []string{"alice"}) {
		t.Fatalf("invited %v", g.Invited)
	}
	if _, err := s.RemoveMember(ctx, Actor{User: "carol"}, g.Conv, "alice"); !errors.Is(err, ErrRefused) {
		t.Fatalf("a member who is not the owner withdrew an invitation: %v", err)
	}
	d, err := s.RemoveMember(ctx, Actor{User: "bob", Session: "s1"}, g.Conv, "alice")
	if err != nil {
		t.Fatalf("withdraw: %v", err)
	}
	if d.IsInvited("alice") || len(d.Invited) != 0 {
		t.Fatalf("still invited: %v", d.Invited)
	}
	checkMembers(t, s, g.Conv, []string{"bob", "carol"}, []string{"alice"})
	ev, _ := lastEvent(t, js, g.Conv)
	if ev.Action != ActionWithdrawn || !slices.Equal(ev.Users, []string{"alice"}) || ev.By != "bob" {
		t.Errorf("event %+v, want alice's invitation withdrawn by bob", ev)
	}
	if ids, _ := s.UserConversations(ctx, "alice"); slices.Contains(ids, g.Conv) {
		t.Error("a withdrawn invitation stays in the invitee's index")
	}
	if _, err := s.GetForViewer(ctx, g.Conv, "alice"); !errors.Is(err, ErrForbidden) {
		t.Errorf("a withdrawn invitation is still visible: %v", err)
	}
	if _, err := s.Accept(ctx, Actor{User: "alice"}, g.Conv); !errors.Is(err, ErrForbidden) {
		t.Errorf("a withdrawn invitation was accepted: %v", err)
	}
	if _, err := s.RemoveMember(ctx, Actor{User: "bob"}, g.Conv, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("withdraw again: %v, want not found", err)
	}
}
