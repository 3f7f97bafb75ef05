package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

func TestCreate(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MembersInline = 3 })
	h.convs.maxMembers = 4
	h.msgs.setLast("d_alice_bob", 7)
	alice := h.dial("alice")

	for _, tc := range []struct {
		name        string
		req         *protocol.Request
		code, msg   string // the error wanted, if any
		kind        string
		members     []string // inline, sorted
		memberCount int
		lastSeq     uint64
	}{
		{name: "direct", req: req(protocol.TypeCreate, func(r *protocol.Request) {
			r.Kind, r.Members = protocol.ConversationDirect, []string{"bob", "alice", "bob"}
		}), kind: protocol.ConversationDirect, members: []string{"alice", "bob"}, memberCount: 2, lastSeq: 7},
		{name: "group listing its members", req: req(protocol.TypeCreate, func(r *protocol.Request) {
			r.Kind, r.Title, r.Members = protocol.ConversationGroup, "g", []string{"carol", "bob"}
		}), kind: protocol.ConversationGroup, members: []string{"alice", "bob", "carol"}, memberCount: 3},
		{name: "group too large to list inline", req: req(protocol.TypeCreate, func(r *protocol.Request) {
			r.Kind, r.Members = protocol.ConversationGroup, []string{"bob", "carol", "dave"}
		}), kind: protocol.ConversationGroup, memberCount: 4},
		{name: "group over the limit", req: req(protocol.TypeCreate, func(r *protocol.Request) {
			r.Kind, r.Members = protocol.ConversationGroup, []string{"bob", "carol", "dave", "erin"}
		}), code: protocol.CodeTooLarge, msg: "a group has at most 4 members"},
		{name: "direct with two others", req: req(protocol.TypeCreate, func(r *protocol.Request) {
			r.Kind, r.Members = protocol.ConversationDirect, []string{"bob", "carol"}
		}), code: protocol.CodeBadRequest, msg: "exactly one other user"},
		{name: "direct with oneself", req: req(protocol.TypeCreate, func(r *protocol.Request) {
			r.Kind, r.Members = protocol.ConversationDirect, []string{"alice"}
		}), code: protocol.CodeBadRequest, msg: "exactly one other user"},
		{name: "bad member id", req: req(protocol.TypeCreate, func(r *protocol.Request) {
			r.Kind, r.Members = protocol.ConversationGroup, []string{"bob.smith"}
		}), code: protocol.CodeBadRequest, msg: "members must match"},
		{name: "bad kind", req: req(protocol.TypeCreate, func(r *protocol.Request) {
			r.Kind, r.Members = "channel", []string{"bob"}
		}), code: protocol.CodeBadRequest, msg: "kind must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f protocol.ConversationFrame
			err := do(t, alice, tc.req, &f)
			if tc.code != "" {
				wantCode(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := f.Conversation
			if f.Type != protocol.TypeConversation || c == nil {
				t.Fatalf("reply %+v", f)
			}
			if c.Kind != tc.kind || !slices.Equal(c.Members, tc.members) || c.MemberCount != tc.memberCount || c.LastSeq != tc.lastSeq {
				t.Fatalf("got %+v, want kind %s members %v (%d) last %d", c, tc.kind, tc.members, tc.memberCount, tc.lastSeq)
			}
			// The change is made in the name of this connection, so the
			// fan-out can spare it the push.
			if got, want := h.convs.lastActor(), (Actor{User: "alice", Session: alice.Welcome().Session}); got != want {
				t.Fatalf("actor %+v, want %+v", got, want)
			}
		})
	}
}

func TestMembershipChanges(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	alice, bob, carol := h.dial("alice"), h.dial("bob"), h.dial("carol")

	mustDo(t, alice, req(protocol.TypeAddMember, func(r *protocol.Request) { r.Conv, r.Users, r.User = "g1", []string{"carol"}, "dave" }), nil)
	var m protocol.MembersFrame
	mustDo(t, carol, req(protocol.TypeMembers, func(r *protocol.Request) { r.Conv = "g1" }), &m)
	if want := []string{"alice", "bob", "carol", "dave"}; !slices.Equal(m.Members, want) {
		t.Fatalf("members %v, want %v", m.Members, want)
	}

	for _, tc := range []struct {
		name      string
		c         func() error
		code, msg string
	}{
		{"a non-member adds", func() error {
			return do(t, h.dial("erin"), req(protocol.TypeAddMember, func(r *protocol.Request) { r.Conv, r.User = "g1", "erin" }), nil)
		}, protocol.CodeForbidden, "not a member of this conversation"},
		{"no user named", func() error {
			return do(t, alice, req(protocol.TypeAddMember, func(r *protocol.Request) { r.Conv = "g1" }), nil)
		}, protocol.CodeBadRequest, "user or users"},
		{"bad conv", func() error {
			return do(t, alice, req(protocol.TypeAddMember, func(r *protocol.Request) { r.Conv, r.User = "g 1", "erin" }), nil)
		}, protocol.CodeBadRequest, "conv must match"},
		{"not the owner removes", func() error {
			return do(t, bob, req(protocol.TypeRemoveMember, func(r *protocol.Request) { r.Conv, r.User = "g1", "carol" }), nil)
		}, protocol.CodeForbidden, ""},
		{"remove a non-member", func() error {
			return do(t, alice, req(protocol.TypeRemoveMember, func(r *protocol.Request) { r.Conv, r.User = "g1", "zed" }), nil)
		}, protocol.CodeNotFound, "zed is not a member"},
		{"remove without user", func() error {
			return do(t, alice, req(protocol.TypeRemoveMember, func(r *protocol.Request) { r.Conv = "g1" }), nil)
		}, protocol.CodeBadRequest, "conv and user"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.c(), tc.code, tc.msg) })
	}

	mustDo(t, alice, req(protocol.TypeRemoveMember, func(r *protocol.Request) { r.Conv, r.User = "g1", "dave" }), nil)
	mustDo(t, bob, req(protocol.TypeLeave, func(r *protocol.Request) { r.Conv = "g1" }), nil)
	mustDo(t, alice, req(protocol.TypeMembers, func(r *protocol.Request) { r.Conv = "g1" }), &m)
	if want := []string{"alice", "carol"}; !slices.Equal(m.Members, want) {
		t.Fatalf("members after remove and leave %v, want %v", m.Members, want)
	}
	wantCode(t, do(t, bob, req(protocol.TypeMembers, func(r *protocol.Request) { r.Conv = "g1" }), nil), protocol.CodeForbidden, "")
}

func TestMembersPages(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "u5", "u5", "u3", "u1", "u4", "u2")
	c := h.dial("u1")
	after := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	var pages [][]string
	var cursor json.RawMessage
	for {
		var m protocol.MembersFrame
		mustDo(t, c, req(protocol.TypeMembers, func(r *protocol.Request) { r.Conv, r.Limit, r.After = "g1", 2, cursor }), &m)
		pages = append(pages, m.Members)
		if !m.More {
			break
		}
		cursor = after(m.Members[len(m.Members)-1])
	}
	if got := fmt.Sprint(pages); got != "[[u1 u2] [u3 u4] [u5]]" {
		t.Fatalf("pages %s", got)
	}
	err := do(t, c, req(protocol.TypeMembers, func(r *protocol.Request) { r.Conv, r.After = "g1", json.RawMessage(`17`) }), nil)
	wantCode(t, err, protocol.CodeBadRequest, "after must be a user id")
}

func TestConversations(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MembersInline = 2 })
	// More conversations than are read at once.
	const n = conversationsWidth + 5
	for i := range n {
		conv := fmt.Sprintf("c%02d", i)
		h.convs.add(conv, protocol.ConversationDirect, "", "alice", fmt.Sprintf("u%d", i))
		for seq := uint64(1); seq <= uint64(i); seq++ {
			h.msgs.put(&protocol.Message{Conv: conv, Seq: seq, Sender: "x", Body: json.RawMessage(`{}`)})
		}
	}
	// An edit does not count as unread.
	h.msgs.put(&protocol.Message{Conv: "c03", Seq: 4, Kind: protocol.KindEdit, Ref: 1, Body: json.RawMessage(`{}`)})
	h.convs.markers["c03/alice"] = 1
	h.convs.add("big", protocol.ConversationGroup, "alice", "alice", "bob", "carol")
	// The index still names a conversation alice was removed from.
	h.convs.add("gone", protocol.ConversationGroup, "bob", "bob", "alice")
	h.convs.drop("gone", "alice")
	alice := h.dial("alice")

	var f protocol.ConversationsFrame
	mustDo(t, alice, req(protocol.TypeConversations, nil), &f)
	if len(f.Conversations) != n+1 || f.More || f.Next != "" {
		t.Fatalf("%d conversations (more %v, next %q), want %d on one page", len(f.Conversations), f.More, f.Next, n+1)
	}
	// Ordered by id: "big" comes first.
	if big := f.Conversations[0]; big.Conv != "big" || big.Members != nil || big.MemberCount != 3 {
		t.Fatalf("big group %+v: members inline past MembersInline", big)
	}
	for i, c := range f.Conversations[1:] {
		want := protocol.Conversation{Conv: fmt.Sprintf("c%02d", i), Kind: protocol.ConversationDirect, MemberCount: 2,
			Members: []string{"alice", fmt.Sprintf("u%d", i)}, LastSeq: uint64(i), Unread: uint64(i), Role: protocol.RoleMember}
		if i == 3 {
			want.LastSeq, want.ReadSeq, want.Unread = 4, 1, 2
		}
		if !reflect.DeepEqual(*c, want) {
			t.Fatalf("got %+v, want %+v", *c, want)
		}
	}

	// One conversation that cannot be read fails the whole list.
	h.convs.mu.Lock()
	h.convs.fail["c07"] = errors.New("disk on fire")
	h.convs.mu.Unlock()
	wantCode(t, do(t, alice, req(protocol.TypeConversations, nil), nil), protocol.CodeInternal, "internal error")
}

// conversationsPages pages through c's conversations with limit and
// returns the conv ids of each page, checking every frame's size.
func conversationsPages(t *testing.T, c *client.Client, limit, maxFrame int) [][]string {
	t.Helper()
	var pages [][]string
	var after json.RawMessage
	for range 1000 {
		raw, err := c.Request(context.Background(), req(protocol.TypeConversations, func(r *protocol.Request) { r.Limit, r.After = limit, after }))
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > maxFrame {
			t.Fatalf("a conversations frame of %d bytes, want at most %d", len(raw), maxFrame)
		}
		var f protocol.ConversationsFrame
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range f.Conversations {
			ids = append(ids, c.Conv)
		}
		pages = append(pages, ids)
		if f.More != (f.Next != "") {
			t.Fatalf("more %v with next %q", f.More, f.Next)
		}
		if !f.More {
			return pages
		}
		if len(ids) == 0 {
			t.Fatalf("an empty page with more")
		}
		after, _ = json.Marshal(f.Next)
	}
	t.Fatal("conversations never reached its last page")
	return nil
}

func TestConversationsPages(t *testing.T) {
	h := newHarness(t)
	for _, conv := range []string{"c5", "c3", "c1", "c4", "c2", "c6"} {
		h.convs.add(conv, protocol.ConversationGroup, "alice", "alice", "bob")
	}
	// Left, but still in the index: skipped without making a page short.
	h.convs.drop("c3", "alice")
	h.convs.drop("c4", "alice")
	alice := h.dial("alice")

	if got := fmt.Sprint(conversationsPages(t, alice, 2, 1<<20)); got != "[[c1 c2] [c5 c6]]" {
		t.Fatalf("pages %s", got)
	}
	if got := fmt.Sprint(conversationsPages(t, alice, 0, 1<<20)); got != "[[c1 c2 c5 c6]]" {
		t.Fatalf("pages with the default limit %s", got)
	}
	for _, after := range []string{`17`, `"not a cursor"`, `"` + encodeConvCursor("c1")[1:] + `"`, `"aWQ6Yy4x"` /* id:c.1 */} {
		err := do(t, alice, req(protocol.TypeConversations, func(r *protocol.Request) { r.After = json.RawMessage(after) }), nil)
		wantCode(t, err, protocol.CodeBadRequest, "after must be the next cursor")
	}
}

// The default page is 100 conversations, the largest 500, and a page ends
// before its frame would pass the bound, however large the conversations.
func TestConversationsPagesFit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxPendingBytes = 256 << 10 }) // pages of 64 KiB
	const n = 620
	title := strings.Repeat("<", 256)
	var want []string
	for i := range n {
		conv := fmt.Sprintf("g%03d", i)
		want = append(want, conv)
		h.convs.add(conv, protocol.ConversationGroup, "alice", "alice", strings.Repeat("m", 64))
		h.convs.docs[conv].title = title
	}
	alice := h.dial("alice")
	bound := h.srv.pageBytes()
	var got []string
	pages := conversationsPages(t, alice, protocol.MaxConversationsLimit, bound)
	for _, p := range pages {
		got = append(got, p...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %d conversations over %d pages, want %d once each in order", len(got), len(pages), n)
	}
	if len(pages) < 4 {
		t.Fatalf("%d pages of at most %d bytes for %d conversations of over 400 bytes", len(pages), bound, n)
	}
	// Small conversations: the limits decide.
	h2 := newHarness(t)
	for i := range 600 {
		h2.convs.add(fmt.Sprintf("d%03d", i), protocol.ConversationDirect, "", "bob", "carol")
	}
	bob := h2.dial("bob")
	var sizes []int
	for _, p := range conversationsPages(t, bob, 0, protocol.MaxPageBytes) {
		sizes = append(sizes, len(p))
	}
	if fmt.Sprint(sizes) != "[100 100 100 100 100 100]" {
		t.Fatalf("default pages of %v", sizes)
	}
	sizes = nil
	for _, p := range conversationsPages(t, bob, 1000, protocol.MaxPageBytes) {
		sizes = append(sizes, len(p))
	}
	if fmt.Sprint(sizes) != "[500 100]" {
		t.Fatalf("pages of %v with a limit over the cap", sizes)
	}
}
