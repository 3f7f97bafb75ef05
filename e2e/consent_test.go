package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// contacts makes a and b contacts without b connecting: a opens a direct
// conversation and b accepts it through the conversation store, as b's
// accept request would. Tests that watch b's presence use it: b's
// connecting would be presence of its own.
func contacts(t *testing.T, e *env, a *client.Client, b string) *protocol.Conversation {
	t.Helper()
	ctx := ctxT(t)
	d, err := a.CreateDirect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.app.NATS().RoleURL(natsrv.RoleGateway), nats.CustomInboxPrefix(schema.Inbox(natsrv.RoleGateway)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := conversation.New(ctx, conversation.Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(ctx, conversation.Actor{User: b}, d.Conv); err != nil {
		t.Fatal(err)
	}
	return d
}

// listed returns the caller's conversations by id.
func listed(t *testing.T, c *client.Client) map[string]*protocol.Conversation {
	t.Helper()
	list, err := c.Conversations(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]*protocol.Conversation, len(list))
	for _, x := range list {
		m[x.Conv] = x
	}
	return m
}

// A stranger's direct conversation is a message request: nothing of the
// recipient flows to the requester (presence, typing, read receipts)
// until she accepts, and declining makes it disappear for good.
func TestStrangersDirectConversationIsARequest(t *testing.T) {
	e := start(t, fastHeartbeat)
	ctx := ctxT(t)
	mallory := e.dial(t, "mallory")
	d, err := mallory.CreateDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != protocol.ConvStatePending {
		t.Errorf("the requester's state %q, want pending", d.State)
	}
	alice := e.dial(t, "alice")
	// alice coming online is not announced to mallory, nor answered.
	noEvent(t, mallory, 700*time.Millisecond, protocol.TypePresence)
	if users := queryPresence(t, mallory, "alice"); users["alice"] != nil {
		t.Fatalf("mallory learned alice's presence through a request: %v", users)
	}
	if c := listed(t, alice)[d.Conv]; c == nil || c.State != protocol.ConvStateRequest {
		t.Fatalf("alice's list shows %+v, want a request", c)
	}
	ack, err := mallory.Send(ctx, d.Conv, "m1", text("hi, click this"))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, alice); m.Seq != ack.Seq {
		t.Fatalf("alice got %+v", m)
	}
	// Reading and typing in the request tell mallory nothing.
	if err := alice.MarkRead(ctx, d.Conv, ack.Seq); err != nil {
		t.Fatal(err)
	}
	if err := alice.Typing(ctx, d.Conv); err != nil {
		t.Fatal(err)
	}
	noEvent(t, mallory, 500*time.Millisecond, protocol.TypeRead, protocol.TypeTyping)
	if c := listed(t, mallory)[d.Conv]; c == nil || c.State != protocol.ConvStatePending {
		t.Fatalf("mallory's list shows %+v, want pending", c)
	}

	// Declined: gone from alice's list, and mallory's later messages
	// neither reach her nor bring it back.
	if err := alice.Decline(ctx, d.Conv); err != nil {
		t.Fatal(err)
	}
	if c := listed(t, alice)[d.Conv]; c != nil {
		t.Fatalf("a declined request is still listed: %+v", c)
	}
	if _, err := mallory.Send(ctx, d.Conv, "m2", text("hello??")); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.CreateDirect(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	noEvent(t, alice, 500*time.Millisecond, protocol.TypeMessage, protocol.TypeConversation)
	if c := listed(t, alice)[d.Conv]; c != nil {
		t.Fatalf("the requester brought a declined request back: %+v", c)
	}
	_, err = alice.Sync(ctx, d.Conv, 0, 0)
	wantCode(t, err, protocol.CodeForbidden)
	// mallory is not told.
	if c := listed(t, mallory)[d.Conv]; c == nil || c.State != protocol.ConvStatePending || c.MemberCount != 2 {
		t.Fatalf("mallory's view after the decline: %+v", c)
	}
}

// Sending in a request accepts it: the requester sees the acceptance and
// the recipient's presence from then on.
func TestReplyingAcceptsARequest(t *testing.T) {
	e := start(t, fastHeartbeat)
	ctx := ctxT(t)
	bob, alice := e.dial(t, "bob"), e.dial(t, "alice")
	d, err := bob.CreateDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, alice, protocol.TypeConversation); ev["conversation"].(map[string]any)["state"] != protocol.ConvStateRequest {
		t.Fatalf("alice's conversation push %v, want a request", ev)
	}
	if _, err := alice.Send(ctx, d.Conv, "a1", text("hi bob")); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, bob, protocol.TypeConversation)
	if c := ev["conversation"].(map[string]any); c["conv"] != d.Conv || c["state"] != nil {
		t.Fatalf("bob's push on acceptance = %v, want the conversation without state", ev)
	}
	if got := queryPresence(t, bob, "alice")["alice"].(map[string]any); got["online"] != true {
		t.Fatalf("after accepting, bob's query = %v", got)
	}
	if c := listed(t, alice)[d.Conv]; c == nil || c.State != "" {
		t.Fatalf("alice's list after replying: %+v", c)
	}
	// The explicit accept of an accepted conversation changes nothing.
	if c, err := alice.Accept(ctx, d.Conv); err != nil || c.State != "" {
		t.Fatalf("accept again: %+v, %v", c, err)
	}
}

// add_policy contacts refuses a stranger's add, saying why.
func TestAddPolicyContactsRefusesStrangers(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, mallory, bob := e.dial(t, "alice"), e.dial(t, "mallory"), e.dial(t, "bob")
	if st, err := alice.Settings(ctx); err != nil || st.AddPolicy != protocol.AddPolicyEveryone {
		t.Fatalf("default settings %+v, %v", st, err)
	}
	if st, err := alice.SetAddPolicy(ctx, protocol.AddPolicyContacts); err != nil || st.AddPolicy != protocol.AddPolicyContacts {
		t.Fatalf("set: %+v, %v", st, err)
	}
	_, err := request(t, alice, map[string]any{"type": "settings", "add_policy": "friends"})
	wantCode(t, err, protocol.CodeBadRequest)
	g, err := mallory.CreateGroup(ctx, "free stuff")
	if err != nil {
		t.Fatal(err)
	}
	err = mallory.AddMembers(ctx, g.Conv, "alice")
	wantCode(t, err, protocol.CodeForbidden)
	if !strings.Contains(err.Error(), "alice accepts adds only from contacts") {
		t.Errorf("refusal does not say why: %v", err)
	}
	_, err = mallory.CreateGroup(ctx, "more free stuff", "alice")
	wantCode(t, err, protocol.CodeForbidden)
	noEvent(t, alice, 300*time.Millisecond, protocol.TypeConversation)
	if n := len(listed(t, alice)); n != 0 {
		t.Fatalf("alice is in %d conversations", n)
	}
	// A contact may add her.
	d, err := bob.CreateDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Accept(ctx, d.Conv); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CreateGroup(ctx, "friends", "alice"); err != nil {
		t.Fatalf("a contact's add: %v", err)
	}
}

// add_policy nobody turns an add into an invitation: the invited user is
// not a member and receives nothing of the group until accepting.
func TestAddPolicyNobodyInvites(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	if _, err := alice.SetAddPolicy(ctx, protocol.AddPolicyNobody); err != nil {
		t.Fatal(err)
	}
	g, err := bob.CreateGroup(ctx, "team", "carol")
	if err != nil {
		t.Fatal(err)
	}
	invited, err := bob.AddOrInvite(ctx, g.Conv, "alice", "dave")
	if err != nil || !slices.Equal(invited, []string{"alice"}) {
		t.Fatalf("add: invited %v, %v", invited, err)
	}
	ev := nextEvent(t, alice, protocol.TypeConversation)
	if c := ev["conversation"].(map[string]any); c["conv"] != g.Conv || c["state"] != protocol.ConvStateInvited {
		t.Fatalf("alice's push = %v, want an invitation", ev)
	}
	if c := listed(t, alice)[g.Conv]; c == nil || c.State != protocol.ConvStateInvited || c.LastSeq != 0 {
		t.Fatalf("alice's list shows %+v", c)
	}
	if _, err := bob.Send(ctx, g.Conv, "b1", text("before alice accepts")); err != nil {
		t.Fatal(err)
	}
	noEvent(t, alice, 500*time.Millisecond, protocol.TypeMessage)
	_, err = alice.Sync(ctx, g.Conv, 0, 0)
	wantCode(t, err, protocol.CodeForbidden)
	_, err = alice.Send(ctx, g.Conv, "a0", text("sneaking in"))
	wantCode(t, err, protocol.CodeForbidden)

	c, err := alice.Accept(ctx, g.Conv)
	if err != nil || c.State != "" {
		t.Fatalf("accept: %+v, %v", c, err)
	}
	ev = nextEvent(t, bob, protocol.TypeMember) // dave's add
	if ev["user"] == "dave" {
		ev = nextEvent(t, bob, protocol.TypeMember)
	}
	if ev["user"] != "alice" || ev["action"] != "added" {
		t.Fatalf("bob's member event = %v", ev)
	}
	ack, err := bob.Send(ctx, g.Conv, "b2", text("welcome"))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, alice); m.Seq != ack.Seq {
		t.Fatalf("alice got %+v", m)
	}
	// Declining an invitation drops it.
	g2, err := bob.CreateGroup(ctx, "other", "alice")
	if err != nil || !slices.Equal(g2.Invited, []string{"alice"}) {
		t.Fatalf("create: %+v, %v", g2, err)
	}
	if err := alice.Decline(ctx, g2.Conv); err != nil {
		t.Fatal(err)
	}
	if c := listed(t, alice)[g2.Conv]; c != nil {
		t.Fatalf("a declined invitation is listed: %+v", c)
	}
}

// hide takes a conversation off the list until a new message arrives;
// leave on a direct conversation hides it the same way.
func TestHideUntilANewMessage(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	g, err := bob.CreateGroup(ctx, "team", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, g.Conv, "b1", text("one")); err != nil {
		t.Fatal(err)
	}
	d, err := bob.CreateDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Hide(ctx, g.Conv); err != nil {
		t.Fatal(err)
	}
	if err := alice.Leave(ctx, d.Conv); err != nil {
		t.Fatalf("leave a direct conversation: %v", err)
	}
	if list := listed(t, alice); list[g.Conv] != nil || list[d.Conv] != nil {
		t.Fatalf("hidden conversations listed: %v", list)
	}
	for _, conv := range []string{g.Conv, d.Conv} {
		if _, err := bob.Send(ctx, conv, "b2", text("are you there?")); err != nil {
			t.Fatal(err)
		}
	}
	list := listed(t, alice)
	if list[g.Conv] == nil || list[d.Conv] == nil {
		t.Fatalf("a new message did not bring them back: %v", list)
	}
	_, err = request(t, alice, map[string]any{"type": "hide", "conv": "g_notmine"})
	wantCode(t, err, protocol.CodeForbidden)
}

// invitedPush waits for c's next conversation push of conv and returns
// its invited list.
func invitedPush(t *testing.T, c *client.Client, conv string) []string {
	t.Helper()
	for {
		ev := nextEvent(t, c, protocol.TypeConversation)
		cv := ev["conversation"].(map[string]any)
		if cv["conv"] != conv {
			continue
		}
		var out []string
		if list, ok := cv["invited"].([]any); ok {
			for _, u := range list {
				out = append(out, u.(string))
			}
		}
		return out
	}
}

// The owner withdraws an invitation with remove_member; an invitee
// leaves it like declining it. The invitee's list drops it, with the
// removal push a decline gets, and the members get the group's invited
// list every time it changes.
func TestOwnerWithdrawsAnInvitation(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob, carol := e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "carol")
	if _, err := alice.SetAddPolicy(ctx, protocol.AddPolicyNobody); err != nil {
		t.Fatal(err)
	}
	g, err := bob.CreateGroup(ctx, "team", "carol")
	if err != nil {
		t.Fatal(err)
	}
	invitedPush(t, carol, g.Conv) // the group's creation
	if invited, err := bob.AddOrInvite(ctx, g.Conv, "alice"); err != nil || !slices.Equal(invited, []string{"alice"}) {
		t.Fatalf("invite: %v, %v", invited, err)
	}
	if ev := nextEvent(t, alice, protocol.TypeConversation); ev["conversation"].(map[string]any)["state"] != protocol.ConvStateInvited {
		t.Fatalf("alice's push = %v, want an invitation", ev)
	}
	// The members are told, the acting connection too.
	for name, c := range map[string]*client.Client{"bob": bob, "carol": carol} {
		if got := invitedPush(t, c, g.Conv); !slices.Equal(got, []string{"alice"}) {
			t.Fatalf("%s's push lists invited %v, want [alice]", name, got)
		}
	}

	// Only the owner withdraws it.
	wantCode(t, carol.RemoveMember(ctx, g.Conv, "alice"), protocol.CodeForbidden)
	if err := bob.RemoveMember(ctx, g.Conv, "alice"); err != nil {
		t.Fatalf("withdraw: %v", err)
	}
	ev := nextEvent(t, alice, protocol.TypeMember)
	if ev["conv"] != g.Conv || ev["user"] != "alice" || ev["action"] != protocol.MemberActionRemoved || ev["by"] != "bob" {
		t.Fatalf("alice's push on withdrawal = %v", ev)
	}
	if c := listed(t, alice)[g.Conv]; c != nil {
		t.Fatalf("a withdrawn invitation is listed: %+v", c)
	}
	_, err = alice.Accept(ctx, g.Conv)
	wantCode(t, err, protocol.CodeForbidden)
	for name, c := range map[string]*client.Client{"bob": bob, "carol": carol} {
		if got := invitedPush(t, c, g.Conv); len(got) != 0 {
			t.Fatalf("%s's push after the withdrawal lists invited %v", name, got)
		}
	}
	if c := listed(t, carol)[g.Conv]; c == nil || len(c.Invited) != 0 {
		t.Fatalf("carol's list shows %+v, want no invitations", c)
	}
	wantCode(t, bob.RemoveMember(ctx, g.Conv, "alice"), protocol.CodeNotFound)

	// Invited again, alice leaves: that declines it.
	if _, err := bob.AddOrInvite(ctx, g.Conv, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := invitedPush(t, carol, g.Conv); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("carol's push lists invited %v, want [alice]", got)
	}
	if c := listed(t, alice)[g.Conv]; c == nil || c.State != protocol.ConvStateInvited {
		t.Fatalf("alice's list shows %+v, want the invitation", c)
	}
	if err := alice.Leave(ctx, g.Conv); err != nil {
		t.Fatalf("an invitee's leave: %v", err)
	}
	if c := listed(t, alice)[g.Conv]; c != nil {
		t.Fatalf("a left invitation is listed: %+v", c)
	}
	if got := invitedPush(t, carol, g.Conv); len(got) != 0 {
		t.Fatalf("carol's push after the leave lists invited %v", got)
	}
	wantCode(t, alice.Leave(ctx, g.Conv), protocol.CodeForbidden)
}
