package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

func TestDirectChatEveryDevice(t *testing.T) {
	e := start(t)
	a1, a2 := e.dial(t, "alice"), e.dial(t, "alice")
	b1, b2 := e.dial(t, "bob"), e.dial(t, "bob")
	ctx := ctxT(t)

	conv, err := a1.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if conv.Kind != protocol.ConversationDirect || conv.MemberCount != 2 || conv.LastSeq != 0 {
		t.Fatalf("conversation = %+v", conv)
	}
	// The same pair is the same conversation, whoever creates it.
	again, err := b1.CreateDirect(ctx, "alice")
	if err != nil || again.Conv != conv.Conv {
		t.Fatalf("bob's create = %+v, %v; want %s", again, err, conv.Conv)
	}

	ack, err := a1.Send(ctx, conv.Conv, "m1", text("hi bob"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Seq < 1 || ack.Conv != conv.Conv || ack.TS == "" {
		t.Fatalf("ack = %+v", ack)
	}
	if _, err := time.Parse(time.RFC3339Nano, ack.TS); err != nil {
		t.Fatalf("ack ts %q: %v", ack.TS, err)
	}
	for name, c := range map[string]*client.Client{"alice's other device": a2, "bob 1": b1, "bob 2": b2} {
		m := nextMessage(t, c)
		if m.Seq != ack.Seq || m.Sender != "alice" || m.ClientID != "m1" || m.TS != ack.TS || string(m.Body) != `{"text":"hi bob"}` {
			t.Fatalf("%s got %+v, want seq %d", name, m, ack.Seq)
		}
	}
	// The sending connection has the ack, not the push: the next message
	// it sees is bob's answer.
	back, err := b2.Send(ctx, conv.Conv, "m2", text("hi alice"))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, a1); m.Seq != back.Seq || m.Sender != "bob" {
		t.Fatalf("alice's sending connection got %+v, want bob's seq %d", m, back.Seq)
	}
	if back.Seq <= ack.Seq {
		t.Fatalf("seq went from %d to %d", ack.Seq, back.Seq)
	}
}

func TestGroupChat(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a, b, c := e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "carol")
	g, err := a.CreateGroup(ctx, "Team", "bob", "carol", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if g.Kind != protocol.ConversationGroup || g.Title != "Team" || g.MemberCount != 3 || g.Owner != "alice" {
		t.Fatalf("group = %+v", g)
	}
	if want := []string{"alice", "bob", "carol"}; fmt.Sprint(g.Members) != fmt.Sprint(want) {
		t.Fatalf("members = %v", g.Members)
	}
	// Members created with the group hear of it without reconnecting.
	for _, cl := range []*client.Client{b, c} {
		ev := nextEvent(t, cl, protocol.TypeConversation)
		if conv := ev["conversation"].(map[string]any); conv["conv"] != g.Conv {
			t.Fatalf("conversation push = %v", ev)
		}
	}
	ack, err := c.Send(ctx, g.Conv, "x", map[string]any{"text": "hello team", "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client.Client{a, b} {
		if m := nextMessage(t, cl); m.Seq != ack.Seq || m.Sender != "carol" {
			t.Fatalf("got %+v", m)
		}
	}
	list, err := b.Conversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Conv != g.Conv || list[0].LastSeq != ack.Seq || list[0].MemberCount != 3 || list[0].Title != "Team" {
		t.Fatalf("conversations = %+v", list[0])
	}
	page, err := a.Members(ctx, g.Conv, "", 2)
	if err != nil || fmt.Sprint(page.Members) != "[alice bob]" || !page.More {
		t.Fatalf("members page 1 = %+v, %v", page, err)
	}
	page, err = a.Members(ctx, g.Conv, "bob", 2)
	if err != nil || fmt.Sprint(page.Members) != "[carol]" || page.More {
		t.Fatalf("members page 2 = %+v, %v", page, err)
	}
}

func TestIdempotentRetry(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a, b := e.dial(t, "alice"), e.dial(t, "bob")
	conv, err := a.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Send(ctx, conv.Conv, "retry-me", text("once"))
	if err != nil {
		t.Fatal(err)
	}
	// A retry after a lost ack, even with another body and on another
	// connection, is the same message.
	a2 := e.dial(t, "alice")
	second, err := a2.Send(ctx, conv.Conv, "retry-me", text("twice?"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq != first.Seq || second.TS != first.TS {
		t.Fatalf("retry ack = %+v, first = %+v", second, first)
	}
	next, err := a.Send(ctx, conv.Conv, "other", text("next"))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, b); m.Seq != first.Seq || string(m.Body) != `{"text":"once"}` {
		t.Fatalf("first delivery = %+v", m)
	}
	if m := nextMessage(t, b); m.Seq != next.Seq {
		t.Fatalf("second delivery = %+v, want seq %d (the retry must not be delivered)", m, next.Seq)
	}
	page, err := b.Sync(ctx, conv.Conv, 0, 100)
	if err != nil || len(page.Messages) != 2 {
		t.Fatalf("sync = %+v, %v; want 2 messages", page, err)
	}
}

func TestOrderingOf100Sends(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a, b := e.dial(t, "alice"), e.dial(t, "bob")
	g, err := a.CreateGroup(ctx, "order", "bob")
	if err != nil {
		t.Fatal(err)
	}
	// Pipeline the sends: all 100 frames are written, in order, before any
	// ack is read.
	for i := range 100 {
		frame := fmt.Sprintf(`{"type":"send","id":"s%03d","conv":%q,"client_id":"c%03d","body":{"i":%d}}`, i, g.Conv, i, i)
		if err := a.WriteRaw(ctx, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	for i := range 100 {
		ev, err := a.NextEvent(ctx, protocol.TypeAck, protocol.TypeError)
		if err != nil {
			t.Fatal(err)
		}
		var ack protocol.Ack
		if err := ev.Decode(&ack); err != nil || ev.Type != protocol.TypeAck {
			t.Fatalf("reply %d = %s", i, ev.Raw)
		}
		if ack.ID != fmt.Sprintf("s%03d", i) {
			t.Fatalf("reply %d answers %s: replies of one connection come in request order", i, ack.ID)
		}
		if len(seqs) > 0 && ack.Seq <= seqs[len(seqs)-1] {
			t.Fatalf("send %d got seq %d after %d", i, ack.Seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, ack.Seq)
	}
	for i := range 100 {
		m := nextMessage(t, b)
		if m.Seq != seqs[i] || string(m.Body) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("delivery %d = seq %d body %s, want seq %d", i, m.Seq, m.Body, seqs[i])
		}
	}
	// Sync pages through them in order.
	var got []uint64
	after := uint64(0)
	for {
		page, err := b.Sync(ctx, g.Conv, after, 30)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			got = append(got, m.Seq)
		}
		if !page.More {
			break
		}
		if len(page.Messages) == 0 {
			t.Fatal("a page with more: true is empty")
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
	if fmt.Sprint(got) != fmt.Sprint(seqs) {
		t.Fatalf("sync = %v, want %v", got, seqs)
	}
	// History pages backwards from the newest.
	got = got[:0]
	before := uint64(0)
	for {
		page, err := b.History(ctx, g.Conv, before, 40)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(page.Messages); i++ {
			if page.Messages[i].Seq <= page.Messages[i-1].Seq {
				t.Fatalf("history page not ascending: %d then %d", page.Messages[i-1].Seq, page.Messages[i].Seq)
			}
		}
		var seqsPage []uint64
		for _, m := range page.Messages {
			seqsPage = append(seqsPage, m.Seq)
		}
		got = append(seqsPage, got...)
		if !page.More {
			break
		}
		before = page.Messages[0].Seq
	}
	if fmt.Sprint(got) != fmt.Sprint(seqs) {
		t.Fatalf("history = %v, want %v", got, seqs)
	}
}

func TestTyping(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a1, a2, b := e.dial(t, "alice"), e.dial(t, "alice"), e.dial(t, "bob")
	conv, err := a1.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := request(t, a1, map[string]any{"type": "typing", "conv": conv.Conv, "id": "t1"}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, b, protocol.TypeTyping)
	if ev["conv"] != conv.Conv || ev["user"] != "alice" {
		t.Fatalf("typing = %v", ev)
	}
	noEvent(t, a2, 300*time.Millisecond, protocol.TypeTyping)
	noEvent(t, a1, 50*time.Millisecond, protocol.TypeTyping)
	// Typing is never stored.
	page, err := b.Sync(ctx, conv.Conv, 0, 10)
	if err != nil || len(page.Messages) != 0 {
		t.Fatalf("sync after typing = %+v, %v", page, err)
	}
}

func TestEditDeleteReaction(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a, b := e.dial(t, "alice"), e.dial(t, "bob")
	conv, err := a.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := a.Send(ctx, conv.Conv, "o1", text("helo"))
	if err != nil {
		t.Fatal(err)
	}
	edit, err := a.SendKind(ctx, conv.Conv, "e1", protocol.KindEdit, orig.Seq, text("hello"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.SendKind(ctx, conv.Conv, "e2", protocol.KindEdit, orig.Seq, text("hijack"))
	wantCode(t, err, protocol.CodeForbidden)
	_, err = b.SendKind(ctx, conv.Conv, "d2", protocol.KindDelete, orig.Seq, map[string]any{})
	wantCode(t, err, protocol.CodeForbidden)
	react, err := b.SendKind(ctx, conv.Conv, "r1", protocol.KindReaction, orig.Seq, map[string]any{"emoji": "👍"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.SendKind(ctx, conv.Conv, "e3", protocol.KindEdit, 999999, text("nothing there"))
	wantCode(t, err, protocol.CodeNotFound)
	_, err = a.SendKind(ctx, conv.Conv, "e4", protocol.KindEdit, 0, text("no ref"))
	wantCode(t, err, protocol.CodeBadRequest)
	nextMessage(t, b) // the original
	if m := nextMessage(t, b); m.Seq != edit.Seq || m.Kind != protocol.KindEdit || m.Ref != orig.Seq {
		t.Fatalf("edit push = %+v", m)
	}
	if m := nextMessage(t, a); m.Seq != react.Seq || m.Kind != protocol.KindReaction || !strings.Contains(string(m.Body), "👍") {
		t.Fatalf("reaction push = %+v", m)
	}
}
