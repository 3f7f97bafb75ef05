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

// TestDeliveredCoalesced: a burst of delivered reports from two devices
// of one user costs one marker write and one notice, clamped to the
// conversation's last seq; a report at or below the marker costs nothing.
func TestDeliveredCoalesced(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DeliveredDelay = 300 * time.Millisecond })
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	h.msgs.setLast("g1", 40)
	notices := h.subscribe(schema.ConvDelivered("*"))
	bob1, bob2 := h.dial("bob"), h.dial("bob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	report := func(c *client.Client, seq int) {
		t.Helper()
		if err := c.WriteRaw(ctx, fmt.Appendf(nil, `{"type":"delivered","conv":"g1","seq":%d}`, seq)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 30; i++ {
		report(bob1, i)
		report(bob2, 31-i)
	}
	report(bob2, 45) // past the last message: clamped
	m := next(t, notices)
	var n schema.DeliveredNotice
	if err := json.Unmarshal(m.Data, &n); err != nil || m.Subject != schema.ConvDelivered("g1") || n.User != "bob" || n.Seq != 40 {
		t.Fatalf("notice on %s: %s (%v); want bob at 40", m.Subject, m.Data, err)
	}
	select {
	case m := <-notices:
		t.Fatalf("a second notice for one burst: %s", m.Data)
	case <-time.After(900 * time.Millisecond):
	}
	h.convs.mu.Lock()
	writes := h.convs.deliveredWrites
	h.convs.mu.Unlock()
	if writes != 1 {
		t.Fatalf("61 reports made %d marker writes; want 1", writes)
	}
	// Behind the marker: written (the store compares) but no notice.
	report(bob1, 12)
	select {
	case m := <-notices:
		t.Fatalf("a report behind the marker was announced: %s", m.Data)
	case <-time.After(900 * time.Millisecond):
	}
	var f protocol.ReceiptsFrame
	mustDo(t, bob1, req(protocol.TypeReceipts, func(r *protocol.Request) { r.Conv = "g1" }), &f)
	if len(f.Receipts) != 2 || f.Receipts[1] != (protocol.Receipt{User: "bob", Delivered: 40}) {
		t.Fatalf("receipts %+v", f.Receipts)
	}
}

// TestDeliveredRefused: bad seqs and non-members are refused, without an
// id too; receipts of a group past MaxReceiptsMembers is too_large.
func TestDeliveredRefused(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	h.convs.add("g2", protocol.ConversationGroup, "carol", "carol")
	big := []string{"alice"}
	for i := range protocol.MaxReceiptsMembers {
		big = append(big, fmt.Sprint("u", i))
	}
	h.convs.add("big", protocol.ConversationGroup, "alice", big...)
	alice := h.dial("alice")
	wantCode(t, do(t, alice, req(protocol.TypeDelivered, func(r *protocol.Request) { r.Conv, r.Seq = "g1", -1 }), nil), protocol.CodeBadRequest, "seq")
	wantCode(t, do(t, alice, req(protocol.TypeDelivered, func(r *protocol.Request) { r.Conv, r.Seq = "g2", 1 }), nil), protocol.CodeForbidden, "member")
	wantCode(t, do(t, alice, req(protocol.TypeReceipts, func(r *protocol.Request) { r.Conv = "g2" }), nil), protocol.CodeForbidden, "member")
	wantCode(t, do(t, alice, req(protocol.TypeReceipts, func(r *protocol.Request) { r.Conv = "big" }), nil), protocol.CodeTooLarge, "100 members")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := alice.WriteRaw(ctx, []byte(`{"type":"delivered","conv":"g2","seq":1}`)); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, alice)
	var perr protocol.Error
	if err := ev.Decode(&perr); err != nil || ev.Type != protocol.TypeError || perr.Code != protocol.CodeForbidden || perr.ID != "" {
		t.Fatalf("a refused delivered without an id got %s", ev.Raw)
	}
}
