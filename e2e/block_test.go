package e2e

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/protocol"
)

// TestBlockRefusesDirectAndAdd: a user someone blocked can neither open a
// direct conversation with them nor put them in a group, by create or by
// add_member; the refusal does not say why. Others still can.
func TestBlockRefusesDirectAndAdd(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, mallory, bob := e.dial(t, "alice"), e.dial(t, "mallory"), e.dial(t, "bob")
	g, err := mallory.CreateGroup(ctx, "lure")
	if err != nil {
		t.Fatal(err)
	}
	users, err := alice.Block(ctx, "mallory")
	if err != nil || !slices.Equal(users, []string{"mallory"}) {
		t.Fatalf("block: %v, %v", users, err)
	}
	_, errDirect := mallory.CreateDirect(ctx, "alice")
	_, errCreate := mallory.CreateGroup(ctx, "trap", "bob", "alice")
	errAdd := mallory.AddMembers(ctx, g.Conv, "alice")
	for _, err := range []error{errDirect, errCreate, errAdd} {
		wantCode(t, err, protocol.CodeForbidden)
		if msg := refusalText(t, err); strings.Contains(strings.ToLower(msg), "block") {
			t.Fatalf("the refusal tells mallory she is blocked: %q", msg)
		}
	}
	if _, err := bob.CreateDirect(ctx, "alice"); err != nil {
		t.Fatalf("bob, not blocked: %v", err)
	}
	// Unblocked, mallory may again.
	if users, err := alice.Unblock(ctx, "mallory"); err != nil || len(users) != 0 {
		t.Fatalf("unblock: %v, %v", users, err)
	}
	if _, err := mallory.CreateDirect(ctx, "alice"); err != nil {
		t.Fatalf("after unblock: %v", err)
	}
}

// refusalText returns the message of a protocol error reply.
func refusalText(t *testing.T, err error) string {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("%v is not an error reply", err)
	}
	return pe.Message
}

// TestBlockHidesState: in a group they share, the blocked user sees none
// of the blocker's presence (answers and pushes), typing or reads, while
// a third member sees all of it; the blocker gets no live pushes of the
// blocked user's messages, which stay in history.
func TestBlockHidesState(t *testing.T) {
	e := start(t, fastHeartbeat)
	ctx := ctxT(t)
	alice, mallory, bob := e.dial(t, "alice"), e.dial(t, "mallory"), e.dial(t, "bob")
	g, err := bob.CreateGroup(ctx, "club", "alice", "mallory")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Block(ctx, "mallory"); err != nil {
		t.Fatal(err)
	}
	// Presence answers.
	if got := queryPresence(t, mallory, "alice", "bob"); got["alice"] != nil || got["bob"] == nil {
		t.Fatalf("mallory's presence answer %v: alice must be left out", got)
	}
	if got := queryPresence(t, bob, "alice"); got["alice"] == nil {
		t.Fatalf("bob's presence answer %v lacks alice", got)
	}
	// Typing and reads.
	if err := alice.Typing(ctx, g.Conv); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, bob, protocol.TypeTyping); ev["user"] != "alice" {
		t.Fatalf("bob got typing %v", ev)
	}
	ack, err := bob.Send(ctx, g.Conv, "", text("hello all"))
	if err != nil {
		t.Fatal(err)
	}
	nextMessage(t, alice)
	nextMessage(t, mallory)
	if err := alice.MarkRead(ctx, g.Conv, ack.Seq); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, bob, protocol.TypeRead); ev["user"] != "alice" {
		t.Fatalf("bob got read %v", ev)
	}
	// Messages: mallory's reach bob live, not alice; alice's history has them.
	mack, err := mallory.Send(ctx, g.Conv, "", text("let me in"))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, bob); m.Sender != "mallory" {
		t.Fatalf("bob got %+v", m)
	}
	// Presence pushes: alice goes offline and comes back.
	_ = alice.Close()
	if ev := presenceOf(t, bob, "alice", 10*time.Second); ev["online"] != false {
		t.Fatalf("bob got %v", ev)
	}
	alice = e.dial(t, "alice")
	if ev := presenceOf(t, bob, "alice", 10*time.Second); ev["online"] != true {
		t.Fatalf("bob got %v", ev)
	}
	if _, err := bob.Send(ctx, g.Conv, "", text("welcome back")); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, alice); m.Sender != "bob" {
		t.Fatalf("alice's first push after reconnecting is %+v, want bob's", m)
	}
	noEvent(t, mallory, 500*time.Millisecond, protocol.TypeTyping, protocol.TypeRead, protocol.TypePresence)
	if _, err := mallory.Send(ctx, g.Conv, "", text("still here")); err != nil {
		t.Fatal(err)
	}
	nextMessage(t, bob)
	noEvent(t, alice, 500*time.Millisecond, protocol.TypeMessage)
	page, err := alice.Sync(ctx, g.Conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(page.Messages, func(m *protocol.Message) bool { return m.Seq == mack.Seq }) {
		t.Fatalf("mallory's message is not in alice's history: %+v", page.Messages)
	}
}

// TestBlockSyncsDevices: a block made on one device reaches the user's
// other connection at once, on another gateway (with the gateway role's
// NATS permissions), which then drops the blocked user's pushes.
func TestBlockSyncsDevices(t *testing.T) {
	e := start(t)
	g2 := e.startGateway(t)
	ctx := ctxT(t)
	phone, laptop, mallory := e.dial(t, "alice"), g2.dial(t, "alice"), e.dial(t, "mallory")
	d, err := mallory.CreateDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Block(ctx, "mallory"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, laptop, protocol.TypeBlocked); fmt.Sprint(ev["users"]) != "[mallory]" {
		t.Fatalf("laptop got %v", ev)
	}
	if _, err := mallory.Send(ctx, d.Conv, "", text("hi?")); err != nil {
		t.Fatal(err)
	}
	noEvent(t, laptop, 500*time.Millisecond, protocol.TypeMessage)
	if got, err := laptop.Blocked(ctx); err != nil || !slices.Equal(got, []string{"mallory"}) {
		t.Fatalf("blocked: %v, %v", got, err)
	}
}

// TestBlockNoMobilePush: an offline user gets no notification of a
// message from someone they blocked; unblocked, they do again.
func TestBlockNoMobilePush(t *testing.T) {
	p := newProviders(t)
	e := start(t, p.config(t, false))
	c1, conv := setupPush(t, e, p, false)
	c2 := e.dial(t, "u2")
	if _, err := c2.Block(ctxT(t), "u1"); err != nil {
		t.Fatal(err)
	}
	_ = c2.Close()
	time.Sleep(time.Second) // u1 can no longer see u2's presence to wait on
	send(t, c1, conv, "you blocked me")
	p.waitCounts(t, 0, 0)
	c2 = e.dial(t, "u2")
	if _, err := c2.Unblock(ctxT(t), "u1"); err != nil {
		t.Fatal(err)
	}
	_ = c2.Close()
	waitOnline(t, c1, "u2", false)
	send(t, c1, conv, "unblocked")
	p.waitCounts(t, 1, 1)
}

// TestNoticesOnlyInSmallConversations: past 100 members nobody gets
// typing or read pushes (each would cost a push and a membership check
// per member); up to 100 they do.
func TestNoticesOnlyInSmallConversations(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	others := []string{"bob"}
	for i := len(others); i < protocol.MaxNoticeMembers; i++ {
		others = append(others, fmt.Sprintf("m%03d", i))
	}
	big, err := alice.CreateGroup(ctx, "big", others...) // 101 members
	if err != nil {
		t.Fatal(err)
	}
	small, err := alice.CreateGroup(ctx, "small", others[:protocol.MaxNoticeMembers-1]...) // 100 members
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := alice.Typing(ctx, big.Conv); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Typing(ctx, small.Conv); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, bob, protocol.TypeTyping); ev["conv"] != small.Conv {
		t.Fatalf("bob got typing %v, want only the small group's", ev)
	}
	noEvent(t, bob, 300*time.Millisecond, protocol.TypeTyping)
}

// TestCreateBounded: create names at most 1,000 users, like add_member.
func TestCreateBounded(t *testing.T) {
	e := start(t)
	c := e.dial(t, "alice")
	users := make([]string, protocol.MaxUsersPerRequest+1)
	for i := range users {
		users[i] = fmt.Sprintf("u%04d", i)
	}
	_, err := c.CreateGroup(ctxT(t), "huge", users...)
	wantCode(t, err, protocol.CodeBadRequest)
}

// TestAddedTooOften: others can put one user into at most 100 groups an
// hour; past that create and add_member are refused with rate_limited
// naming the user, whoever adds. Other users are not affected.
func TestAddedTooOften(t *testing.T) {
	e := start(t, func(c *app.Config) {
		c.Gateway.RateBurst = 10_000
		c.Gateway.RateSustained = 10_000
	})
	ctx := ctxT(t)
	mallory, carol := e.dial(t, "mallory"), e.dial(t, "carol")
	for i := range 100 {
		if _, err := mallory.CreateGroup(ctx, fmt.Sprint("spam ", i), "victim"); err != nil {
			t.Fatalf("group %d: %v", i, err)
		}
	}
	_, err := mallory.CreateGroup(ctx, "one more", "victim")
	wantCode(t, err, protocol.CodeRateLimited)
	if msg := refusalText(t, err); !strings.Contains(msg, "victim") {
		t.Fatalf("the refusal does not name the user: %q", msg)
	}
	g, err := carol.CreateGroup(ctx, "real friends", "dave")
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, carol.AddMembers(ctx, g.Conv, "victim"), protocol.CodeRateLimited)
	// The victim's conversations reply stays usable: 100 groups.
	v := e.dial(t, "victim")
	convs, err := v.Conversations(ctx)
	if err != nil || len(convs) != 100 {
		t.Fatalf("victim has %d conversations, %v", len(convs), err)
	}
	// What strangers used up does not hold back the victim's contacts:
	// their adds neither count nor are refused.
	friend := e.dial(t, "friend")
	d, err := friend.CreateDirect(ctx, "victim")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Accept(ctx, d.Conv); err != nil {
		t.Fatal(err)
	}
	if _, err := friend.CreateGroup(ctx, "old friends", "victim"); err != nil {
		t.Fatalf("a contact could not add the victim after strangers used up the hour: %v", err)
	}
}

// TestBlockKeepsHiddenDirectHidden: a direct conversation the blocker hid
// does not come back when the blocked user writes in it; unblocked, the
// next listing shows it again.
func TestBlockKeepsHiddenDirectHidden(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, mallory := e.dial(t, "alice"), e.dial(t, "mallory")
	d, err := mallory.CreateDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Leave(ctx, d.Conv); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Block(ctx, "mallory"); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Send(ctx, d.Conv, "", text("notice me")); err != nil {
		t.Fatal(err)
	}
	if list := listed(t, alice); list[d.Conv] != nil {
		t.Fatalf("a blocked user's message brought the hidden conversation back: %v", list)
	}
	if _, err := alice.Unblock(ctx, "mallory"); err != nil {
		t.Fatal(err)
	}
	if list := listed(t, alice); list[d.Conv] == nil {
		t.Fatalf("unblocked, the conversation with a newer message stays hidden: %v", list)
	}
}
