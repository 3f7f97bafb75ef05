package gateway

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/protocol"
)

func TestSendMentions(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob", "carol")
	h.convs.add("d1", protocol.ConversationDirect, "", "alice", "bob")
	alice, bob := h.dial("alice"), h.dial("bob")
	send := func(conv string, mentions ...string) *protocol.Request {
		return req(protocol.TypeSend, func(r *protocol.Request) {
			r.Conv, r.ClientID, r.Body, r.Mentions = conv, "m-"+time.Now().Format(time.RFC3339Nano), json.RawMessage(`{"text":"hi"}`), mentions
		})
	}
	stored := func(seq uint64) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		raw, err := h.srv.chatMsg(ctx, "g1", seq)
		if err != nil {
			t.Fatal(err)
		}
		env, err := protocol.DecodeEnvelope(raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		return env.Mentions
	}

	var ack protocol.Ack
	mustDo(t, alice, send("g1", "bob", "carol", "bob"), &ack)
	if got := stored(ack.Seq); !slices.Equal(got, []string{"bob", "carol"}) {
		t.Fatalf("stored mentions %q, want [bob carol]", got)
	}
	mustDo(t, alice, send("g1", protocol.MentionAll), &ack)
	if got := stored(ack.Seq); !slices.Equal(got, []string{protocol.MentionAll}) {
		t.Fatalf("stored mentions %q, want [@all]", got)
	}
	mustDo(t, bob, send("g1"), &ack)
	if got := stored(ack.Seq); got != nil {
		t.Fatalf("a send without mentions stored %q", got)
	}

	wantCode(t, do(t, bob, send("g1", protocol.MentionAll), nil), protocol.CodeForbidden, "owner or an admin")
	wantCode(t, do(t, alice, send("d1", protocol.MentionAll), nil), protocol.CodeForbidden, "owner or an admin")
	wantCode(t, do(t, bob, send("g1", "dave"), nil), protocol.CodeBadRequest, `"dave" is not a member`)
	wantCode(t, do(t, alice, send("d1", "carol"), nil), protocol.CodeBadRequest, `"carol" is not a member`)
	wantCode(t, do(t, alice, send("g1", slices.Repeat([]string{"bob"}, protocol.MaxMentions+1)...), nil), protocol.CodeTooLarge, "at most 50")
	wantCode(t, do(t, alice, req(protocol.TypeSend, func(r *protocol.Request) {
		r.Conv, r.ClientID, r.Body, r.Kind, r.Ref, r.Mentions = "g1", "e-1", json.RawMessage(`{"text":"x"}`), protocol.KindEdit, int64(ack.Seq), []string{"bob"}
	}), nil), protocol.CodeBadRequest, "only with a plain message")
	// A non-member is refused as such, whatever it mentions.
	dave := h.dial("dave")
	wantCode(t, do(t, dave, send("g1", "bob"), nil), protocol.CodeForbidden, "not a member")
}

// roledDoc is a document with admins, which the fakes have not.
type roledDoc struct {
	*fakeDoc
	admins []string
}

func (d roledDoc) Role(uid string) string {
	if r := d.fakeDoc.Role(uid); r != protocol.RoleMember || !slices.Contains(d.admins, uid) {
		return r
	}
	return protocol.RoleAdmin
}

func TestMayMentionAll(t *testing.T) {
	group := &fakeDoc{conv: "g1", kind: protocol.ConversationGroup, owner: "alice", members: []string{"alice", "bob", "carol"}}
	direct := &fakeDoc{conv: "d1", kind: protocol.ConversationDirect, members: []string{"alice", "bob"}}
	roled := roledDoc{group, []string{"bob"}}
	for _, tc := range []struct {
		doc  Conversation
		user string
		want bool
	}{
		{group, "alice", true}, {group, "bob", false}, {group, "mallory", false},
		{direct, "alice", false}, {direct, "bob", false},
		{roled, "alice", true}, {roled, "bob", true}, {roled, "carol", false},
	} {
		if got := mayMentionAll(tc.doc, tc.user); got != tc.want {
			t.Errorf("%s in %s: %v, want %v", tc.user, tc.doc.Protocol(0).Conv, got, tc.want)
		}
	}
}

func TestMuteLevels(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice")
	alice := h.dial("alice")
	str := func(s string) *string { return &s }
	mute := func(level string, until *string) *protocol.Request {
		return req(protocol.TypeMute, func(r *protocol.Request) { r.Conv, r.Level, r.Until = "g1", level, until })
	}
	listed := func() string {
		t.Helper()
		var page protocol.ConversationsFrame
		mustDo(t, alice, req(protocol.TypeConversations, nil), &page)
		if len(page.Conversations) != 1 {
			t.Fatalf("conversations %+v", page.Conversations)
		}
		return page.Conversations[0].Mute
	}
	if got := listed(); got != "" {
		t.Fatalf("mute %q before any mute", got)
	}
	// h.devices.now is 2026-01-02.
	for _, tc := range []struct {
		level     string
		until     *string
		stored    string
		storedEnd time.Time
		listed    string
	}{
		{protocol.MuteMentions, nil, protocol.MuteMentions, time.Time{}, protocol.MuteMentions},
		{protocol.MuteAll, str("2026-02-01T00:00:00Z"), protocol.MuteAll, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), protocol.MuteAll},
		{protocol.MuteNone, nil, protocol.MuteNone, time.Time{}, ""},
		{"", str("2026-02-01T00:00:00Z"), protocol.MuteAll, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), protocol.MuteAll},
		{"", nil, protocol.MuteNone, time.Time{}, ""},
		// A mute that ended is not listed.
		{protocol.MuteMentions, str("2026-01-01T00:00:00Z"), protocol.MuteMentions, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ""},
	} {
		mustDo(t, alice, mute(tc.level, tc.until), nil)
		if got, _ := h.devices.mute("alice", "g1"); got.level != tc.stored || !got.until.Equal(tc.storedEnd) {
			t.Fatalf("level %q until %v stored %+v", tc.level, tc.until, got)
		}
		if got := listed(); got != tc.listed {
			t.Fatalf("level %q until %v listed mute %q, want %q", tc.level, tc.until, got, tc.listed)
		}
	}
	wantCode(t, do(t, alice, mute("some", nil), nil), protocol.CodeBadRequest, `level must be "all", "mentions" or "none"`)
}
