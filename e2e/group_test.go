package e2e

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

func ptr[T any](v T) *T { return &v }

// nextItem waits for the next event item pushed to c that is event and
// checks that by made it (earlier items are skipped: the tests check the
// order in the history).
func nextItem(t *testing.T, c *client.Client, event, by string) *protocol.GroupEvent {
	t.Helper()
	for {
		m := nextMessage(t, c)
		if m.Kind != protocol.KindEvent {
			continue
		}
		ev, err := client.GroupEvent(m)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Event != event {
			continue
		}
		if ev.By != by || m.Sender != by {
			t.Fatalf("item %s by %s (sender %s), want by %s", ev.Event, ev.By, m.Sender, by)
		}
		return ev
	}
}

// nextConversation waits for the next conversation push about conv.
func nextConversation(t *testing.T, c *client.Client, conv string) *protocol.Conversation {
	t.Helper()
	for {
		ev, err := c.NextEvent(ctxT(t), protocol.TypeConversation)
		if err != nil {
			t.Fatalf("waiting for a conversation push: %v", err)
		}
		var f protocol.ConversationFrame
		if err := ev.Decode(&f); err != nil {
			t.Fatal(err)
		}
		if f.Conversation.Conv == conv {
			return f.Conversation
		}
	}
}

// TestGroupSettingsAndRoles: the owner makes an admin, who changes the
// settings; every member gets the group as it is now and the changes as
// event items; plain members are refused; the owner hands the group over.
func TestGroupSettingsAndRoles(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob, carol := e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "carol")
	g, err := alice.CreateGroup(ctx, "team", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if g.Role != protocol.RoleOwner {
		t.Fatalf("creator's role %q", g.Role)
	}
	if c := nextConversation(t, bob, g.Conv); c.Role != protocol.RoleMember || c.Owner != "alice" {
		t.Fatalf("bob's group %+v", c)
	}

	// A plain member may not change the settings or roles.
	_, err = bob.Update(ctx, g.Conv, client.GroupUpdate{Title: ptr("mine")})
	wantCode(t, err, protocol.CodeForbidden)
	wantCode(t, bob.SetRole(ctx, g.Conv, "bob", protocol.RoleAdmin), protocol.CodeForbidden)

	if err := alice.SetRole(ctx, g.Conv, "bob", protocol.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if ev := nextItem(t, carol, protocol.EventRoleChanged, "alice"); ev.User != "bob" || ev.Role != protocol.RoleAdmin {
		t.Fatalf("role item %+v", ev)
	}
	if c := nextConversation(t, bob, g.Conv); c.Role != protocol.RoleAdmin || !slices.Equal(c.Admins, []string{"bob"}) {
		t.Fatalf("bob's group after set_role %+v", c)
	}
	// An admin is still not the owner.
	wantCode(t, bob.SetRole(ctx, g.Conv, "carol", protocol.RoleAdmin), protocol.CodeForbidden)
	wantCode(t, bob.Transfer(ctx, g.Conv, "bob"), protocol.CodeForbidden)

	// The admin renames the group and sets its topic and avatar.
	got, err := bob.Update(ctx, g.Conv, client.GroupUpdate{Title: ptr("Team B"), Topic: ptr("ship it"), Avatar: ptr("https://img.example/a.png")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Team B" || got.Topic != "ship it" || got.Avatar != "https://img.example/a.png" || got.Role != protocol.RoleAdmin {
		t.Fatalf("update answered %+v", got)
	}
	if ev := nextItem(t, carol, protocol.EventRenamed, "bob"); *ev.Title != "Team B" {
		t.Fatalf("renamed item %+v", ev)
	}
	if ev := nextItem(t, carol, protocol.EventTopic, "bob"); *ev.Topic != "ship it" {
		t.Fatalf("topic item %+v", ev)
	}
	if ev := nextItem(t, carol, protocol.EventAvatar, "bob"); *ev.Avatar != "https://img.example/a.png" {
		t.Fatalf("avatar item %+v", ev)
	}
	// carol's role-change push came first; skip to the one with the title.
	for c := nextConversation(t, carol, g.Conv); c.Title != "Team B"; c = nextConversation(t, carol, g.Conv) {
	}
	// The same values again change nothing and store no item.
	if _, err := bob.Update(ctx, g.Conv, client.GroupUpdate{Title: ptr("Team B")}); err != nil {
		t.Fatal(err)
	}
	noEvent(t, carol, 300*time.Millisecond, protocol.TypeMessage)

	for name, u := range map[string]client.GroupUpdate{
		"http avatar":     {Avatar: ptr("http://img.example/a.png")},
		"javascript":      {Avatar: ptr("javascript:alert(1)")},
		"credentials":     {Avatar: ptr("https://u:p@img.example/a.png")},
		"long topic":      {Topic: ptr(string(make([]byte, protocol.MaxTopicBytes+1)))},
		"nothing changed": {},
	} {
		if _, err := alice.Update(ctx, g.Conv, u); code(err) != protocol.CodeBadRequest {
			t.Errorf("%s: %v, want bad_request", name, err)
		}
	}
	// A direct conversation has no settings.
	d, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.Update(ctx, d.Conv, client.GroupUpdate{Title: ptr("x")})
	wantCode(t, err, protocol.CodeBadRequest)

	// The owner hands the group over and becomes an admin.
	if err := alice.Transfer(ctx, g.Conv, "carol"); err != nil {
		t.Fatal(err)
	}
	if ev := nextItem(t, bob, protocol.EventTransferred, "alice"); ev.User != "carol" {
		t.Fatalf("transferred item %+v", ev)
	}
	list, err := alice.Conversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list, func(c *protocol.Conversation) bool { return c.Conv == g.Conv })
	if i < 0 || list[i].Owner != "carol" || list[i].Role != protocol.RoleAdmin || !slices.Equal(list[i].Admins, []string{"alice", "bob"}) {
		t.Fatalf("alice's list after transfer: %+v", list[i])
	}
	wantCode(t, alice.SetRole(ctx, g.Conv, "bob", protocol.RoleMember), protocol.CodeForbidden)
	if err := carol.SetRole(ctx, g.Conv, "bob", protocol.RoleMember); err != nil {
		t.Fatal(err)
	}

	// The owner leaves: the longest standing admin takes over.
	if err := carol.Leave(ctx, g.Conv); err != nil {
		t.Fatal(err)
	}
	if ev := nextItem(t, bob, protocol.EventTransferred, "carol"); ev.User != "alice" {
		t.Fatalf("succession item %+v", ev)
	}

	// Every change is in the history, in order, as the server's items:
	// a client cannot write one.
	page, err := bob.History(ctx, g.Conv, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, m := range page.Messages {
		if m.Kind == protocol.KindEvent {
			var ev protocol.GroupEvent
			_ = json.Unmarshal(m.Body, &ev)
			events = append(events, ev.Event)
		}
	}
	want := []string{"role_changed", "renamed", "topic_changed", "avatar_changed", "transferred", "role_changed", "transferred"}
	if !slices.Equal(events, want) {
		t.Fatalf("event items %v, want %v", events, want)
	}
	_, err = request(t, bob, map[string]any{"type": "send", "conv": g.Conv, "client_id": "forged", "kind": "event", "body": map[string]any{"event": "renamed"}})
	wantCode(t, err, protocol.CodeBadRequest)
}

// TestGroupReadOnlyAndModeration: in a read-only group only the owner and
// admins send, also for a member whose send view the gateway kept; admins
// delete anyone's message; a ban keeps a user out until unbanned.
func TestGroupReadOnlyAndModeration(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob, carol, dave := e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "carol"), e.dial(t, "dave")
	g, err := alice.CreateGroup(ctx, "news", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.SetRole(ctx, g.Conv, "bob", protocol.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	// carol sends first, so her gateway keeps her send view.
	own, err := carol.Send(ctx, g.Conv, "", text("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Update(ctx, g.Conv, client.GroupUpdate{ReadOnly: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if ev := nextItem(t, carol, protocol.EventReadOnly, "bob"); !*ev.ReadOnly {
		t.Fatalf("read_only item %+v", ev)
	}
	_, err = carol.Send(ctx, g.Conv, "", text("may I?"))
	wantCode(t, err, protocol.CodeForbidden)
	_, err = carol.SendKind(ctx, g.Conv, "", protocol.KindReaction, own.Seq, map[string]any{"emoji": "👍"})
	wantCode(t, err, protocol.CodeForbidden)
	for _, c := range []*client.Client{alice, bob} {
		if _, err := c.Send(ctx, g.Conv, "", text("announcement")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.Update(ctx, g.Conv, client.GroupUpdate{ReadOnly: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Send(ctx, g.Conv, "", text("thanks")); err != nil {
		t.Fatal(err)
	}

	// Moderation: the admin deletes carol's message; carol may delete
	// neither bob's nor edit it.
	bobs, err := bob.Send(ctx, g.Conv, "", text("rules"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = carol.DeleteMessage(ctx, g.Conv, bobs.Seq)
	wantCode(t, err, protocol.CodeForbidden)
	_, err = bob.SendKind(ctx, g.Conv, "", protocol.KindEdit, own.Seq, text("edited"))
	wantCode(t, err, protocol.CodeForbidden)
	del, err := bob.DeleteMessage(ctx, g.Conv, own.Seq)
	if err != nil {
		t.Fatal(err)
	}
	for {
		m := nextMessage(t, carol)
		if m.Seq == del.Seq {
			if m.Kind != protocol.KindDelete || m.Ref != own.Seq || m.Sender != "bob" {
				t.Fatalf("moderator delete pushed as %+v", m)
			}
			break
		}
	}

	// Pages carry the tombstone with who deleted it (the stores keep
	// deleted_by when the delete's sender is not the message's).
	page, err := carol.History(ctx, g.Conv, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(page.Messages, func(m *protocol.Message) bool { return m.Seq == own.Seq })
	if i < 0 || !page.Messages[i].Deleted || page.Messages[i].DeletedBy != "bob" {
		t.Fatalf("moderated message in the history: %+v", page.Messages)
	}

	// Bans: an admin bans a plain member, not the owner or another admin.
	wantCode(t, bob.Ban(ctx, g.Conv, "alice"), protocol.CodeForbidden)
	wantCode(t, carol.Ban(ctx, g.Conv, "bob"), protocol.CodeForbidden)
	if err := bob.Ban(ctx, g.Conv, "carol"); err != nil {
		t.Fatal(err)
	}
	if m := nextEvent(t, carol, protocol.TypeMember); m["user"] != "carol" || m["action"] != "removed" {
		t.Fatalf("carol heard %v", m)
	}
	// A ban of a non-member keeps them out too; banning twice is fine.
	for _, u := range []string{"dave", "dave"} {
		if err := bob.Ban(ctx, g.Conv, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"carol", "dave"} {
		wantCode(t, alice.AddMembers(ctx, g.Conv, u), protocol.CodeForbidden)
	}
	banned, err := bob.Banned(ctx, g.Conv)
	if err != nil || !slices.Equal(banned, []string{"carol", "dave"}) {
		t.Fatalf("banned = %v, %v", banned, err)
	}
	_, err = carol.Banned(ctx, g.Conv)
	wantCode(t, err, protocol.CodeForbidden)
	if err := alice.Unban(ctx, g.Conv, "carol"); err != nil {
		t.Fatal(err)
	}
	if err := alice.AddMembers(ctx, g.Conv, "carol"); err != nil {
		t.Fatal(err)
	}
	if banned, err := alice.Banned(ctx, g.Conv); err != nil || !slices.Equal(banned, []string{"dave"}) {
		t.Fatalf("banned after unban = %v, %v", banned, err)
	}
	noEvent(t, dave, 200*time.Millisecond, protocol.TypeConversation)
}

// TestGroupOnlyAdminsAdd: with only_admins_add set (by an admin; a plain
// member may not set it) a plain member's add_member is refused and adds
// nobody, while the owner and admins still add; the change is an event
// item and in every member's conversation push; unset, members add again.
func TestGroupOnlyAdminsAdd(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob, carol := e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "carol")
	g, err := alice.CreateGroup(ctx, "team", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.SetRole(ctx, g.Conv, "bob", protocol.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := carol.AddMembers(ctx, g.Conv, "dave"); err != nil {
		t.Fatalf("a plain member adds by default: %v", err)
	}
	_, err = carol.Update(ctx, g.Conv, client.GroupUpdate{OnlyAdminsAdd: ptr(true)})
	wantCode(t, err, protocol.CodeForbidden)

	got, err := bob.Update(ctx, g.Conv, client.GroupUpdate{OnlyAdminsAdd: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if !got.OnlyAdminsAdd {
		t.Fatalf("update reply %+v: want only_admins_add", got)
	}
	if ev := nextItem(t, carol, protocol.EventOnlyAdminsAdd, "bob"); ev.OnlyAdminsAdd == nil || !*ev.OnlyAdminsAdd {
		t.Fatalf("only_admins_add item %+v", ev)
	}
	if c := nextConversation(t, carol, g.Conv); !c.OnlyAdminsAdd {
		t.Fatalf("carol's conversation push %+v: want only_admins_add", c)
	}

	err = carol.AddMembers(ctx, g.Conv, "erin")
	wantCode(t, err, protocol.CodeForbidden)
	if _, err := carol.AddOrInvite(ctx, g.Conv, "erin"); err == nil {
		t.Fatal("a plain member's add_member succeeded in an only_admins_add group")
	}
	if err := bob.AddMembers(ctx, g.Conv, "erin"); err != nil {
		t.Fatalf("an admin adds: %v", err)
	}
	if err := alice.AddMembers(ctx, g.Conv, "frank"); err != nil {
		t.Fatalf("the owner adds: %v", err)
	}
	page, err := alice.Members(ctx, g.Conv, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	if !slices.Equal(page.Members, want) {
		t.Fatalf("members %v, want %v (carol's refused add added nobody)", page.Members, want)
	}

	if _, err := alice.Update(ctx, g.Conv, client.GroupUpdate{OnlyAdminsAdd: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if ev := nextItem(t, carol, protocol.EventOnlyAdminsAdd, "alice"); ev.OnlyAdminsAdd == nil || *ev.OnlyAdminsAdd {
		t.Fatalf("only_admins_add item %+v: want false", ev)
	}
	if err := carol.AddMembers(ctx, g.Conv, "gina"); err != nil {
		t.Fatalf("members add again once unset: %v", err)
	}
	list, err := carol.Conversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.Conv == g.Conv && c.OnlyAdminsAdd {
			t.Fatalf("conversation %+v still says only_admins_add", c)
		}
	}
}
