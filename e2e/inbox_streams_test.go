package e2e

import (
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// TestInboxAcrossStreams: the list is ordered by the time of each
// conversation's newest message, not by its seq. In the cluster topology
// (NATTER_E2E_TOPOLOGY=cluster3x4) the three groups are in three
// different partition streams and their seqs order them otherwise than
// their times: old (one message), busy (20 messages, the highest seq)
// and then newest (one message, a low seq of its own stream). The list
// paged one at a time must be newest, busy, old (groups created on the
// way, without messages, come after), and client.Inbox,
// fed with the pushes, must show the same. In the one-stream topology
// seqs and times agree, and the test checks the same order.
func TestInboxAcrossStreams(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	phone := e.dial(t, "alice")
	_, js := e.operatorJS(t)
	l := messageLayout(t, js)
	// Three groups in three different streams (any three in the
	// one-stream topology).
	var groups []*protocol.Conversation
	streams := map[string]bool{}
	for range 100 {
		g, err := alice.CreateGroup(ctx, fmt.Sprint("g", len(groups)), "bob")
		if err != nil {
			t.Fatal(err)
		}
		if s := l.StreamOf(g.Conv); !streams[s] || !l.Split() {
			streams[s] = true
			groups = append(groups, g)
		}
		if len(groups) == 3 {
			break
		}
	}
	if len(groups) < 3 {
		t.Fatalf("100 groups in %d streams", len(streams))
	}
	old, busy, newest := groups[0].Conv, groups[1].Conv, groups[2].Conv
	in := client.NewInbox("alice")
	if err := in.Load(ctx, phone, 1, 0); err != nil {
		t.Fatal(err)
	}
	send := func(conv, id string) *protocol.Ack {
		t.Helper()
		ack, err := bob.Send(ctx, conv, id, text(id))
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	send(old, "o")
	var top *protocol.Ack
	for i := range 20 {
		top = send(busy, fmt.Sprint("b", i))
	}
	// Later in time than busy's, but (with partitions) a lower seq.
	time.Sleep(5 * time.Millisecond)
	last := send(newest, "n")
	if l.Split() && last.Seq >= top.Seq {
		t.Fatalf("newest's seq %d is not below busy's %d: the test shows nothing", last.Seq, top.Seq)
	}
	for range 22 {
		nextMessage(t, alice)
	}
	full := listUntilFirst(t, alice, 1, newest)
	list := only(full, groups)
	wantOrder(t, list, newest, busy, old)
	if list[0].Last.Seq != last.Seq || list[1].Last.Seq != top.Seq || list[0].Unread != 1 || list[1].Unread != 20 {
		t.Fatalf("list = %+v, %+v", list[0], list[1])
	}
	converge(t, phone, in, full)

	// A message in old brings it to the top, whatever its seq.
	send(old, "o2")
	nextMessage(t, alice)
	full = listUntilFirst(t, alice, 2, old)
	list = only(full, groups)
	wantOrder(t, list, old, newest, busy)
	converge(t, phone, in, full)

	// A cursor of the seq order (version 1) is refused, saying why.
	_, err := request(t, alice, map[string]any{"type": "conversations", "id": "1", "limit": 1,
		"after": base64.RawURLEncoding.EncodeToString([]byte("i1:5:" + busy))})
	wantCode(t, err, protocol.CodeBadRequest)
}

// only keeps the items of list that are of convs, in list's order.
func only(list []*protocol.Conversation, convs []*protocol.Conversation) []*protocol.Conversation {
	var out []*protocol.Conversation
	for _, c := range list {
		if slices.ContainsFunc(convs, func(k *protocol.Conversation) bool { return k.Conv == c.Conv }) {
			out = append(out, c)
		}
	}
	return out
}
