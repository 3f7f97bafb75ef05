package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// TestMentions sends mentions over real sockets: they reach the members
// with the message, and a send that mentions a non-member, @all without
// being the group's owner, or too many users is refused.
func TestMentions(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	owner, bob, carol := e.dial(t, "men-owner"), e.dial(t, "men-bob"), e.dial(t, "men-carol")
	g, err := owner.CreateGroup(ctx, "Team", "men-bob", "men-carol")
	if err != nil {
		t.Fatal(err)
	}
	// Each member's added push comes before anything sent after.
	nextEvent(t, bob, protocol.TypeConversation)
	nextEvent(t, carol, protocol.TypeConversation)

	ack, err := owner.SendWith(ctx, g.Conv, "", text("@men-bob @men-carol lunch?"), client.SendOptions{Mentions: []string{"men-bob", "men-carol", "men-bob"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{bob, carol} {
		m := nextMessage(t, c)
		if m.Seq != ack.Seq || !slices.Equal(m.Mentions, []string{"men-bob", "men-carol"}) {
			t.Fatalf("pushed %+v, want seq %d mentioning men-bob, men-carol once each", m, ack.Seq)
		}
	}
	ack, err = owner.SendWith(ctx, g.Conv, "", text("@all standup"), client.SendOptions{Mentions: []string{protocol.MentionAll}})
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, carol); m.Seq != ack.Seq || !slices.Equal(m.Mentions, []string{protocol.MentionAll}) {
		t.Fatalf("pushed %+v, want @all", m)
	}
	nextMessage(t, bob)

	for _, tc := range []struct {
		name     string
		from     *client.Client
		mentions []string
		code     string
		says     string
	}{
		{"a non-member", bob, []string{"men-carol", "men-dave"}, protocol.CodeBadRequest, `"men-dave" is not a member`},
		{"@all by a member", bob, []string{protocol.MentionAll}, protocol.CodeForbidden, "owner or an admin"},
		{"over 50", owner, slices.Repeat([]string{"men-bob"}, protocol.MaxMentions+1), protocol.CodeTooLarge, "at most 50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.from.SendWith(ctx, g.Conv, "", text("x"), client.SendOptions{Mentions: tc.mentions})
			wantCode(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %v does not say %q", err, tc.says)
			}
		})
	}
	// Nothing refused was stored: the next message the members get is this.
	ack, err = bob.Send(ctx, g.Conv, "", text("ok"))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, carol); m.Seq != ack.Seq || m.Mentions != nil {
		t.Fatalf("pushed %+v, want the plain seq %d", m, ack.Seq)
	}
}

// TestMuteLevelListed: the conversation list carries the user's mute
// level, which the Go client sets; none is omitted.
func TestMuteLevelListed(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	c := e.dial(t, "mute-alice")
	g, err := c.CreateGroup(ctx, "Quiet", "mute-bob")
	if err != nil {
		t.Fatal(err)
	}
	listed := func() string {
		t.Helper()
		convs, err := c.Conversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, cv := range convs {
			if cv.Conv == g.Conv {
				return cv.Mute
			}
		}
		t.Fatalf("%s not listed", g.Conv)
		return ""
	}
	for _, tc := range []struct {
		level string
		until time.Time
		want  string
	}{
		{protocol.MuteMentions, time.Time{}, protocol.MuteMentions},
		{protocol.MuteAll, time.Now().Add(time.Hour), protocol.MuteAll},
		{protocol.MuteMentions, time.Now().Add(-time.Hour), ""},
		{protocol.MuteAll, time.Time{}, protocol.MuteAll},
		{protocol.MuteNone, time.Time{}, ""},
	} {
		if err := c.Mute(ctx, g.Conv, tc.level, tc.until); err != nil {
			t.Fatalf("mute %s: %v", tc.level, err)
		}
		if got := listed(); got != tc.want {
			t.Fatalf("after mute %s until %v listed %q, want %q", tc.level, tc.until, got, tc.want)
		}
	}
	wantCode(t, c.Mute(ctx, g.Conv, "loud", time.Time{}), protocol.CodeBadRequest)
	wantCode(t, e.dial(t, "mute-eve").Mute(ctx, g.Conv, protocol.MuteAll, time.Time{}), protocol.CodeForbidden)
}

// TestPushMuteMentions runs the push rules of mute levels against the
// local HTTPS APNs and Web Push servers: at level mentions only messages
// that mention the user (by id or @all) are pushed; at level all none.
func TestPushMuteMentions(t *testing.T) {
	p := newProviders(t)
	e := start(t, p.config(t, false))
	c1, conv := setupPush(t, e, p, true) // u1 owns the group, u2 is offline
	mute := func(level string) {
		t.Helper()
		c2 := e.dial(t, "u2")
		if err := c2.Mute(ctxT(t), conv, level, time.Time{}); err != nil {
			t.Fatalf("mute %s: %v", level, err)
		}
		_ = c2.Close()
		waitOnline(t, c1, "u2", false)
	}
	sendMentioning := func(msg string, mentions ...string) {
		t.Helper()
		if _, err := c1.SendWith(ctxT(t), conv, "", text(msg), client.SendOptions{Mentions: mentions}); err != nil {
			t.Fatal(err)
		}
	}

	mute(protocol.MuteMentions)
	send(t, c1, conv, "not for you")
	sendMentioning("for u1 only", "u1")
	p.waitCounts(t, 0, 0)
	sendMentioning("@u2 look", "u2")
	p.waitCounts(t, 1, 1)
	if web := p.web.Delivered()[0].Payload; web["body"] != "u1: @u2 look" {
		t.Fatalf("Web Push got %v, want the mention", web)
	}
	sendMentioning("@all look", protocol.MentionAll)
	p.waitCounts(t, 2, 2)

	mute(protocol.MuteAll)
	sendMentioning("@u2 again", "u2")
	p.waitCounts(t, 2, 2)

	mute(protocol.MuteNone)
	send(t, c1, conv, "plain again")
	p.waitCounts(t, 3, 3)
}

// TestMentionAllMatrix: who may mention @all (a group's owner and admins),
// per role and conversation,
// with the exact answer; a refusal stores nothing.
func TestMentionAllMatrix(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	users := map[string]*client.Client{}
	for _, u := range []string{"all-alice", "all-erin", "all-bob", "all-carol", "all-dave", "all-mallory"} {
		users[u] = e.dial(t, u)
	}
	g, err := users["all-alice"].CreateGroup(ctx, "matrix", "all-erin", "all-bob", "all-carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := users["all-alice"].SetRole(ctx, g.Conv, "all-erin", protocol.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := users["all-alice"].RemoveMember(ctx, g.Conv, "all-carol"); err != nil {
		t.Fatal(err)
	}
	d, err := users["all-dave"].CreateDirect(ctx, "all-alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users["all-alice"].Send(ctx, d.Conv, "", text("accepted")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		role, user, conv, want string
	}{
		{roleOwner, "all-alice", g.Conv, protocol.TypeAck},
		{roleAdmin, "all-erin", g.Conv, protocol.TypeAck},
		{roleMember, "all-bob", g.Conv, protocol.CodeForbidden},
		{roleRemoved, "all-carol", g.Conv, protocol.CodeForbidden},
		{roleNonMember, "all-mallory", g.Conv, protocol.CodeForbidden},
		{roleDirect, "all-dave", d.Conv, protocol.CodeForbidden},
		{roleDirect, "all-alice", d.Conv, protocol.CodeForbidden},
	} {
		t.Run(tc.role+"/"+tc.user, func(t *testing.T) {
			_, err := users[tc.user].SendWith(ctx, tc.conv, "", text("@all"), client.SendOptions{Mentions: []string{protocol.MentionAll}})
			got := code(err)
			if err == nil {
				got = protocol.TypeAck
			}
			if got != tc.want {
				t.Fatalf("@all by %s → %v; want %s", tc.user, err, tc.want)
			}
		})
	}
	// An admin made a plain member again may no longer.
	if err := users["all-alice"].SetRole(ctx, g.Conv, "all-erin", protocol.RoleMember); err != nil {
		t.Fatal(err)
	}
	_, err = users["all-erin"].SendWith(ctx, g.Conv, "", text("@all"), client.SendOptions{Mentions: []string{protocol.MentionAll}})
	wantCode(t, err, protocol.CodeForbidden)
}

// TestMentionsPaged: mentions survive the history store, in both stores:
// once the history writer has stored the messages, pages read from the
// store carry them as the push did.
func TestMentionsPaged(t *testing.T) { eachStore(t, mentionsPaged) }

func mentionsPaged(t *testing.T, store func(*app.Config)) {
	e := start(t, store)
	ctx := ctxT(t)
	owner := e.dial(t, "pg-owner")
	g, err := owner.CreateGroup(ctx, "Paged", "pg-bob")
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]string{}
	for _, mentions := range [][]string{{"pg-bob"}, nil, {protocol.MentionAll, "pg-bob"}} {
		ack, err := owner.SendWith(ctx, g.Conv, "", text("x"), client.SendOptions{Mentions: mentions})
		if err != nil {
			t.Fatal(err)
		}
		want[ack.Seq] = mentions
	}
	historyCaughtUp(t, e)
	page, err := owner.History(ctx, g.Conv, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, m := range page.Messages {
		if w, ok := want[m.Seq]; ok {
			seen++
			if !slices.Equal(m.Mentions, w) {
				t.Errorf("history item %d mentions %q, want %q", m.Seq, m.Mentions, w)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("history has %d of the %d messages: %+v", seen, len(want), page.Messages)
	}
}
