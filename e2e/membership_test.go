package e2e

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/protocol"
)

func TestNonMemberIsForbiddenEverywhere(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a, b, mallory := e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "mallory")
	g, err := a.CreateGroup(ctx, "secret", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, g.Conv, "s1", text("for members only")); err != nil {
		t.Fatal(err)
	}
	for _, conv := range []string{g.Conv, "g_doesnotexist", "d_nope"} {
		frames := []map[string]any{
			{"type": "send", "conv": conv, "client_id": "x", "body": text("hi")},
			{"type": "sync", "conv": conv, "after": 0},
			{"type": "history", "conv": conv},
			{"type": "members", "conv": conv},
			{"type": "typing", "conv": conv, "id": "t"},
			{"type": "add_member", "conv": conv, "user": "mallory"},
			{"type": "remove_member", "conv": conv, "user": "bob"},
			{"type": "leave", "conv": conv},
		}
		for _, f := range frames {
			_, err := request(t, mallory, f)
			if code(err) != protocol.CodeForbidden {
				t.Errorf("%s on %s: %v, want forbidden", f["type"], conv, err)
			}
		}
	}
	list, err := mallory.Conversations(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("mallory's conversations = %v, %v", list, err)
	}
	// Nothing leaked to mallory in pushes either.
	if _, err := b.Send(ctx, g.Conv, "s2", text("still secret")); err != nil {
		t.Fatal(err)
	}
	noEvent(t, mallory, 300*time.Millisecond)
}

func TestLiveAddAndRemove(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	owner, bob, dave := e.dial(t, "olivia"), e.dial(t, "bob"), e.dial(t, "dave")
	g, err := owner.CreateGroup(ctx, "live", "bob")
	if err != nil {
		t.Fatal(err)
	}
	// Bob, a plain member, may add; dave hears of it at once.
	if err := bob.AddMembers(ctx, g.Conv, "dave"); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, dave, protocol.TypeConversation)
	if conv := ev["conversation"].(map[string]any); conv["conv"] != g.Conv || conv["member_count"] != float64(3) {
		t.Fatalf("dave's conversation push = %v", ev)
	}
	if ev := nextEvent(t, owner, protocol.TypeMember); ev["user"] != "dave" || ev["action"] != "added" {
		t.Fatalf("member event = %v", ev)
	}
	if ev := nextEvent(t, dave, protocol.TypeMember); ev["user"] != "dave" || ev["action"] != "added" {
		t.Fatalf("dave's member event = %v", ev)
	}
	ack, err := owner.Send(ctx, g.Conv, "w", text("welcome dave"))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, dave); m.Seq != ack.Seq {
		t.Fatalf("dave got %+v", m)
	}
	if _, err := dave.Send(ctx, g.Conv, "t", text("thanks")); err != nil {
		t.Fatalf("dave, just added, cannot send: %v", err)
	}

	// Only the owner removes others.
	wantCode(t, bob.RemoveMember(ctx, g.Conv, "dave"), protocol.CodeForbidden)
	if err := owner.RemoveMember(ctx, g.Conv, "dave"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, dave, protocol.TypeMember); ev["user"] != "dave" || ev["action"] != "removed" {
		t.Fatalf("dave's removal event = %v", ev)
	}
	after, err := owner.Send(ctx, g.Conv, "gone", text("dave is gone"))
	if err != nil {
		t.Fatal(err)
	}
	// Bob still gets everything: the welcome, dave's thanks, then this.
	for i := 0; ; i++ {
		m := nextMessage(t, bob)
		if m.Seq == after.Seq {
			break
		}
		if i == 2 {
			t.Fatalf("bob never got seq %d", after.Seq)
		}
	}
	noEvent(t, dave, 300*time.Millisecond, protocol.TypeMessage)
	_, err = dave.Sync(ctx, g.Conv, 0, 10)
	wantCode(t, err, protocol.CodeForbidden)
	_, err = dave.History(ctx, g.Conv, 0, 10)
	wantCode(t, err, protocol.CodeForbidden)
	_, err = dave.Send(ctx, g.Conv, "back?", text("let me in"))
	wantCode(t, err, protocol.CodeForbidden)
	list, err := dave.Conversations(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("dave's conversations = %v, %v", list, err)
	}

	// When the owner leaves, the longest standing member owns the group.
	if err := owner.Leave(ctx, g.Conv); err != nil {
		t.Fatal(err)
	}
	lst, err := bob.Conversations(ctx)
	if err != nil || len(lst) != 1 || lst[0].Owner != "bob" || lst[0].MemberCount != 1 {
		t.Fatalf("after the owner left: %+v, %v", lst, err)
	}
	if err := bob.RemoveMember(ctx, g.Conv, "olivia"); code(err) != protocol.CodeNotFound {
		t.Fatalf("removing a non-member = %v, want not_found", err)
	}
}

func TestDirectRules(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a := e.dial(t, "alice")
	conv, err := a.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, a.AddMembers(ctx, conv.Conv, "carol"), protocol.CodeBadRequest)
	wantCode(t, a.RemoveMember(ctx, conv.Conv, "bob"), protocol.CodeBadRequest)
	for _, f := range []map[string]any{
		{"type": "create", "kind": "direct", "members": []string{}},
		{"type": "create", "kind": "direct", "members": []string{"alice"}},
		{"type": "create", "kind": "direct", "members": []string{"bob", "carol"}},
		{"type": "create", "kind": "channel", "members": []string{"bob"}},
		{"type": "create", "kind": "group", "members": []string{"bad id"}},
	} {
		_, err := request(t, a, f)
		wantCode(t, err, protocol.CodeBadRequest)
	}
	// Yourself in members is ignored.
	again, err := request(t, a, map[string]any{"type": "create", "kind": "direct", "members": []string{"alice", "bob"}})
	if err != nil || again["conversation"].(map[string]any)["conv"] != conv.Conv {
		t.Fatalf("create with self = %v, %v", again, err)
	}
}
