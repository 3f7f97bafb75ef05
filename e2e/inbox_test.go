package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/inbox"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// TestInbox: conversations lists alice's conversations newest activity
// first with the preview of the newest message, unread and mention
// counts, paged by cursor; edits and deletes of the newest message show
// in the preview; a read on one device reaches the other as a
// conversation push, and a client.Inbox fed with the pushes ends up as
// the server's list. On both history stores.
func TestInbox(t *testing.T) {
	eachStore(t, func(t *testing.T, store func(*app.Config)) {
		e := start(t, store)
		ctx := ctxT(t)
		alice, bob, carol := e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "carol")
		phone := e.dial(t, "alice") // alice's second device
		g1, err := alice.CreateGroup(ctx, "first", "bob", "carol")
		if err != nil {
			t.Fatal(err)
		}
		g2, err := alice.CreateGroup(ctx, "second", "carol")
		if err != nil {
			t.Fatal(err)
		}
		d, err := alice.CreateDirect(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		quiet, err := alice.CreateGroup(ctx, "quiet", "bob")
		if err != nil {
			t.Fatal(err)
		}
		in := client.NewInbox("alice")
		if err := in.Load(ctx, phone, 1, 0); err != nil {
			t.Fatal(err)
		}
		send := func(c *client.Client, conv, id, txt string) *protocol.Ack {
			t.Helper()
			ack, err := c.Send(ctx, conv, id, text(txt))
			if err != nil {
				t.Fatal(err)
			}
			return ack
		}
		send(bob, g1.Conv, "b1", "hello first")
		b2 := send(bob, g1.Conv, "b2", "again first")
		long := strings.Repeat("word ", 60) // 300 runes, folded and cut to 140
		send(carol, g2.Conv, "c1", long)
		dm := send(bob, d.Conv, "b3", "a direct one")
		mentioned := publishAs(t, e, "carol", g1.Conv, `{"sender":"carol","client_id":"m1","mentions":["alice"],"body":{"text":"hey @alice"}}`)
		for range 5 {
			nextMessage(t, alice)
		}

		list := listAll(t, alice, 2)
		wantOrder(t, list, g1.Conv, d.Conv, g2.Conv, quiet.Conv)
		first := list[0]
		if first.Last == nil || first.Last.Seq != mentioned || first.Last.Sender != "carol" || first.Last.Snippet != "hey @alice" {
			t.Fatalf("g1 last = %+v, want carol's mention at %d", first.Last, mentioned)
		}
		if first.Unread != 3 || first.MentionCount != 1 || first.LastSeq != mentioned || first.Title != "first" || first.MemberCount != 3 {
			t.Fatalf("g1 = %+v, want 3 unread, 1 mention", first)
		}
		if l := list[1].Last; l == nil || l.Seq != dm.Seq || l.Snippet != "a direct one" || l.TS != dm.TS || list[1].Unread != 1 || list[1].MentionCount != 0 {
			t.Fatalf("direct = %+v last %+v", list[1], l)
		}
		if got := list[2].Last.Snippet; len(got) < protocol.MaxSnippetRunes-1 || len(got) > protocol.MaxSnippetRunes || !strings.HasPrefix(long, got) {
			t.Fatalf("long snippet = %q (%d runes)", got, len(got))
		}
		if list[3].Last != nil || list[3].Unread != 0 {
			t.Fatalf("quiet = %+v, want no preview", list[3])
		}
		converge(t, phone, in, list)

		// The direct conversation's newest message edited, then the
		// second group's deleted: the previews follow.
		if _, err := bob.SendKind(ctx, d.Conv, "e1", protocol.KindEdit, dm.Seq, text("edited direct")); err != nil {
			t.Fatal(err)
		}
		g2last := list[2].Last.Seq
		if _, err := carol.SendKind(ctx, g2.Conv, "x1", protocol.KindDelete, g2last, map[string]any{}); err != nil {
			t.Fatal(err)
		}
		nextMessage(t, alice)
		nextMessage(t, alice)
		list = listAll(t, alice, 10)
		wantOrder(t, list, g1.Conv, d.Conv, g2.Conv, quiet.Conv)
		if l := list[1].Last; l.Seq != dm.Seq || l.Snippet != "edited direct" || list[1].Unread != 1 {
			t.Fatalf("edited direct = %+v last %+v", list[1], l)
		}
		if l := list[2].Last; l.Seq != g2last || !l.Deleted || l.Snippet != "" {
			t.Fatalf("deleted g2 last = %+v", l)
		}
		converge(t, phone, in, list)

		// alice reads g1 on her laptop up to bob's second message: the
		// phone gets the item with the counts after it, then all of it.
		if err := alice.MarkRead(ctx, g1.Conv, b2.Seq); err != nil {
			t.Fatal(err)
		}
		list = listAll(t, alice, 10)
		if list[0].Unread != 1 || list[0].MentionCount != 1 || list[0].ReadSeq != b2.Seq {
			t.Fatalf("after a partial read: %+v", list[0])
		}
		converge(t, phone, in, list)
		if err := alice.MarkRead(ctx, g1.Conv, mentioned); err != nil {
			t.Fatal(err)
		}
		list = listAll(t, alice, 10)
		if list[0].Unread != 0 || list[0].MentionCount != 0 || list[0].ReadSeq != mentioned {
			t.Fatalf("after reading all: %+v", list[0])
		}
		converge(t, phone, in, list)

		// A message in the quiet group moves it to the top; one alice
		// sends herself leaves it read.
		send(bob, quiet.Conv, "q1", "wake up")
		nextMessage(t, alice)
		send(alice, g2.Conv, "a1", "mine")
		// Her own message enters her inbox when the fan-out has recorded
		// it (the sending connection gets no push of it): list until then.
		list = listUntilFirst(t, alice, 3, g2.Conv)
		wantOrder(t, list, g2.Conv, quiet.Conv, g1.Conv, d.Conv)
		if list[0].Unread != 0 || list[0].Last.Sender != "alice" || list[1].Unread != 1 || list[2].Unread != 0 {
			t.Fatalf("after new messages: %s", describe(list))
		}
		converge(t, phone, in, list)

		// Removed from g1, alice no longer lists it.
		if err := bob.Leave(ctx, g1.Conv); err != nil {
			t.Fatal(err)
		}
		if err := alice.RemoveMember(ctx, g1.Conv, "carol"); err != nil {
			t.Fatal(err)
		}
		if err := alice.Leave(ctx, g1.Conv); err != nil {
			t.Fatal(err)
		}
		list = listAll(t, alice, 2)
		wantOrder(t, list, g2.Conv, quiet.Conv, d.Conv)
		converge(t, phone, in, list)
	})
}

// TestInboxCursor: a cursor that is not one the server gave is refused.
func TestInboxCursor(t *testing.T) {
	e := start(t)
	alice := e.dial(t, "alice")
	for _, bad := range []any{"nope", 12, "aTE6eDp5", strings.Repeat("a", 200)} {
		_, err := request(t, alice, map[string]any{"type": "conversations", "id": "1", "after": bad})
		wantCode(t, err, protocol.CodeBadRequest)
	}
}

// listAll pages through alice's whole list, limit at a time.
func listAll(t *testing.T, c *client.Client, limit int) []*protocol.Conversation {
	t.Helper()
	var all []*protocol.Conversation
	after := ""
	for pages := 0; ; pages++ {
		f, err := c.ConversationsPage(ctxT(t), after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Conversations) > limit || pages > 100 {
			t.Fatalf("page of %d, limit %d", len(f.Conversations), limit)
		}
		all = append(all, f.Conversations...)
		if !f.More {
			return all
		}
		after = f.Next
	}
}

// listUntilFirst lists c's conversations until first leads, failing
// after 10 s.
func listUntilFirst(t *testing.T, c *client.Client, limit int, first string) []*protocol.Conversation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list := listAll(t, c, limit)
		if len(list) > 0 && list[0].Conv == first {
			return list
		}
		if time.Now().After(deadline) {
			wantOrder(t, list, first)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func wantOrder(t *testing.T, list []*protocol.Conversation, convs ...string) {
	t.Helper()
	var got []string
	for _, c := range list {
		got = append(got, c.Conv)
	}
	if fmt.Sprint(got) != fmt.Sprint(convs) {
		t.Fatalf("order = %v, want %v", got, convs)
	}
}

// converge applies c's pushes to in until it shows what the server
// lists (order, previews, counts, markers), failing after 10 s.
func converge(t *testing.T, c *client.Client, in *client.Inbox, want []*protocol.Conversation) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		diff := sameList(in.List(), want)
		if diff == "" {
			return
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		ev, err := c.NextEvent(ctx)
		cancel()
		if err != nil {
			for _, g := range in.List() {
				t.Logf("client.Inbox: %s last_seq %d last %+v", g.Conv, g.LastSeq, g.Last)
			}
			for _, g := range want {
				t.Logf("server:       %s last_seq %d last %+v", g.Conv, g.LastSeq, g.Last)
			}
			t.Fatalf("client.Inbox never showed the server's list: %s", diff)
		}
		in.Apply(ev)
	}
}

// sameList describes how got differs from want, "" when it does not.
func sameList(got []protocol.Conversation, want []*protocol.Conversation) string {
	if len(got) != len(want) {
		return fmt.Sprintf("inbox holds %d, server lists %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Conv != w.Conv || g.Unread != w.Unread || g.MentionCount != w.MentionCount || g.LastSeq != w.LastSeq ||
			g.ReadSeq != w.ReadSeq || fmt.Sprint(g.Last) != fmt.Sprint(w.Last) {
			return fmt.Sprintf("inbox item %d = %+v last %+v, server %+v last %+v", i, g, g.Last, w, w.Last)
		}
	}
	return ""
}

// publishAs stores an envelope in conv as the legacy service user does
// (the path a message with mentions takes until send validates them) and
// returns its seq.
func publishAs(t *testing.T, e *env, id, conv, envelope string) uint64 {
	t.Helper()
	nc, err := nats.Connect(e.app.NATS().RoleURL(natsrv.RoleService), nats.CustomInboxPrefix(schema.Inbox(natsrv.RoleService)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := &nats.Msg{Subject: schema.Msg(conv), Data: []byte(envelope), Header: nats.Header{schema.HeaderMsgID: []string{id + ":" + conv}}}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// TestInboxBeyondHead: alice in more conversations with messages than a
// head holds (inbox.HeadSize): pages first come from the head, then from
// the whole list, and together list each conversation once, newest
// activity first; a message in the oldest brings it back to the top.
func TestInboxBeyondHead(t *testing.T) {
	e := start(t, func(c *app.Config) {
		c.Gateway.RateBurst, c.Gateway.RateSustained = 100_000, 100_000
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := e.dial(t, "alice")
	const n = inbox.HeadSize + 30
	var convs []string
	for i := range n {
		g, err := alice.CreateGroup(ctx, fmt.Sprintf("g%d", i))
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, g.Conv)
		if _, err := alice.Send(ctx, g.Conv, "m", text(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	empty, err := alice.CreateGroup(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	check := func(top string) {
		t.Helper()
		// alice's own devices get no push of what she sent: wait until the
		// fan-out noted every message (a walk while it still notes some
		// misses those, as a message moves its conversation to the top).
		var list []*protocol.Conversation
		noted := 0
		deadline := time.Now().Add(30 * time.Second)
		for {
			list, noted = listAll(t, alice, 50), 0
			for _, c := range list {
				if c.Last != nil {
					noted++
				}
			}
			if noted == n && list[0].Conv == top {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 30 s: %d of %d listed with a message, first %s (want %s), %d listed", noted, n, list[0].Conv, top, len(list))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(list) != n+1 {
			t.Fatalf("listed %d, want %d", len(list), n+1)
		}
		seen := map[string]bool{}
		for i, c := range list {
			if seen[c.Conv] {
				t.Fatalf("%s listed twice", c.Conv)
			}
			seen[c.Conv] = true
			if i > 0 && c.Last != nil && (list[i-1].Last == nil || lastTime(t, list[i-1]).Before(lastTime(t, c))) {
				t.Fatalf("item %d (%+v) after %+v", i, c.Last, list[i-1].Last)
			}
		}
		if list[0].Conv != top || list[n].Conv != empty.Conv || list[n].Last != nil {
			t.Fatalf("first %s, last %s: want %s first and %s last", list[0].Conv, list[n].Conv, top, empty.Conv)
		}
	}
	check(convs[n-1])
	if _, err := alice.Send(ctx, convs[0], "again", text("back on top")); err != nil {
		t.Fatal(err)
	}
	check(convs[0])
}

// lastTime is the time of c's newest message or event, which orders the
// list.
func lastTime(t *testing.T, c *protocol.Conversation) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, c.Last.TS)
	if err != nil {
		t.Fatalf("%s: last.ts %q: %v", c.Conv, c.Last.TS, err)
	}
	return ts
}

// describe shows what a list says of each item: id, markers, counts and
// the preview's seq and sender.
func describe(list []*protocol.Conversation) string {
	var b strings.Builder
	for _, c := range list {
		fmt.Fprintf(&b, "[%s last_seq %d read_seq %d unread %d mentions %d", c.Conv, c.LastSeq, c.ReadSeq, c.Unread, c.MentionCount)
		if c.Last != nil {
			fmt.Fprintf(&b, " last %d by %s at %s", c.Last.Seq, c.Last.Sender, c.Last.TS)
		}
		b.WriteString("] ")
	}
	return b.String()
}
