package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// TestOwnMarkerWrittenLater checks that a send writes no read marker, yet
// every answer that shows or moves a marker is as if it had: read_seq is
// the sender's last message, unread counts what came after it, a read up
// to one's own message is no move, and Shutdown writes what is owed.
func TestOwnMarkerWrittenLater(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OwnMarkerDelay = time.Hour })
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	alice, bob := h.dial("alice"), h.dial("bob")
	reads := h.subscribe(schema.ConvRead("g1"))

	send := func(c *client.Client, who string, i int) uint64 {
		t.Helper()
		var ack protocol.Ack
		mustDo(t, c, req(protocol.TypeSend, func(r *protocol.Request) {
			r.Conv, r.ClientID, r.Body = "g1", fmt.Sprintf("%s-%d", who, i), json.RawMessage(`{"text":"hi"}`)
		}), &ack)
		h.msgs.put(&protocol.Message{Conv: "g1", Seq: ack.Seq, Sender: who, Body: json.RawMessage(`{"text":"hi"}`)})
		return ack.Seq
	}
	a1 := send(alice, "alice", 1)
	send(bob, "bob", 1)
	a2 := send(alice, "alice", 2)
	b2 := send(bob, "bob", 2)
	h.convs.mu.Lock()
	writes := h.convs.markWrites
	h.convs.mu.Unlock()
	if writes != 0 {
		t.Fatalf("4 sends made %d read-marker writes; want none on the send path", writes)
	}

	// A read up to alice's own last message moves nothing: no notice.
	mustDo(t, alice, req(protocol.TypeRead, func(r *protocol.Request) { r.Conv, r.Seq = "g1", int64(a1) }), nil)
	select {
	case m := <-reads:
		t.Fatalf("a read below the sender's own message sent a notice: %s", m.Data)
	case <-time.After(300 * time.Millisecond):
	}
	if got := h.convs.marker("g1", "alice"); got != a2 {
		t.Fatalf("alice's marker after her read = %d; want her last message %d", got, a2)
	}

	// Listing shows each sender's marker at their last message.
	for _, tc := range []struct {
		c              *client.Client
		read, unread   uint64
		who            string
		wantLastInList uint64
	}{{alice, a2, 1, "alice", b2}, {bob, b2, 0, "bob", b2}} {
		var f protocol.ConversationsFrame
		mustDo(t, tc.c, req(protocol.TypeConversations, nil), &f)
		if len(f.Conversations) != 1 {
			t.Fatalf("%s has %d conversations", tc.who, len(f.Conversations))
		}
		if c := f.Conversations[0]; c.ReadSeq != tc.read || c.Unread != tc.unread || c.LastSeq != tc.wantLastInList {
			t.Fatalf("%s's conversation = read %d unread %d last %d; want %d, %d, %d", tc.who, c.ReadSeq, c.Unread, c.LastSeq, tc.read, tc.unread, tc.wantLastInList)
		}
	}
	h.convs.mu.Lock()
	writes = h.convs.markWrites
	h.convs.mu.Unlock()
	if writes != 3 { // alice's read: settle and her own; bob's listing
		t.Fatalf("%d marker writes; want 3: one per user for all their sends, and alice's read", writes)
	}

	// What is still owed is written at shutdown.
	a3 := send(alice, "alice", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.convs.marker("g1", "alice"); got != a3 {
		t.Fatalf("alice's marker after shutdown = %d; want %d", got, a3)
	}
}

// TestOwnMarkerFlushedInTime checks that an owed marker is written within
// OwnMarkerDelay without anything else asking for it.
func TestOwnMarkerFlushedInTime(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.OwnMarkerDelay = 100 * time.Millisecond })
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	alice := h.dial("alice")
	var ack protocol.Ack
	mustDo(t, alice, req(protocol.TypeSend, func(r *protocol.Request) {
		r.Conv, r.ClientID, r.Body = "g1", "m-1", json.RawMessage(`{"text":"hi"}`)
	}), &ack)
	deadline := time.Now().Add(5 * time.Second)
	for h.convs.marker("g1", "alice") != ack.Seq {
		if time.Now().After(deadline) {
			t.Fatalf("alice's marker = %d 5 s after her send; want %d", h.convs.marker("g1", "alice"), ack.Seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
