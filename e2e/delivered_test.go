package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// dialDelivered connects user with the client's delivered reports after
// delay (negative: off).
func (e *env) dialDelivered(t testing.TB, user string, delay time.Duration) *client.Client {
	t.Helper()
	return e.dialOpts(t, client.Options{Token: token(t, user), DeliveredDelay: delay})
}

// awaitDelivered waits for the delivered push of user in conv reaching
// seq, and fails on one beyond it or of another user.
func awaitDelivered(t testing.TB, c *client.Client, conv, user string, seq uint64) {
	t.Helper()
	for {
		ev := nextEvent(t, c, protocol.TypeDelivered)
		if ev["conv"] != conv || ev["user"] != user || ev["seq"].(float64) > float64(seq) {
			t.Fatalf("waiting for %s delivered to %d in %s, got %v", user, seq, conv, ev)
		}
		if ev["seq"] == float64(seq) {
			return
		}
	}
}

func receiptsOf(t testing.TB, c *client.Client, conv string) map[string]protocol.Receipt {
	t.Helper()
	f, err := c.Receipts(ctxT(t), conv)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]protocol.Receipt{}
	for _, r := range f.Receipts {
		out[r.User] = r
	}
	return out
}

// TestDeliveredReceipts: the client library reports what reached it,
// live and through sync, the gateway coalesces the reports, the sender
// gets delivered pushes and sees every member's delivered and read
// markers in receipts; a client that turned the reports off reports
// nothing; markers never move back.
func TestDeliveredReceipts(t *testing.T) {
	e := start(t, func(c *app.Config) { c.Gateway.DeliveredDelay = 200 * time.Millisecond })
	ctx := ctxT(t)
	alice := e.dialDelivered(t, "alice", 100*time.Millisecond)
	bob := e.dialDelivered(t, "bob", 100*time.Millisecond)
	carol := e.dialDelivered(t, "carol", -1) // reports turned off
	g, err := alice.CreateGroup(ctx, "ticks", "bob", "carol", "dave")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for i := range 5 {
		ack, err := alice.Send(ctx, g.Conv, "", text(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Seq)
	}
	last := seqs[4]
	// bob's client reported the pushes it got; five messages within the
	// delays cost at most a couple of pushes, the last at last.
	awaitDelivered(t, alice, g.Conv, "bob", last)
	// carol got the messages too, but reports nothing.
	for range 5 {
		nextMessage(t, carol)
	}
	noEvent(t, alice, 1500*time.Millisecond, protocol.TypeDelivered)

	r := receiptsOf(t, alice, g.Conv)
	want := map[string]protocol.Receipt{
		"alice": {User: "alice", Delivered: last, Read: last}, // her sends moved her read marker
		"bob":   {User: "bob", Delivered: last},
		"carol": {User: "carol"},
		"dave":  {User: "dave"},
	}
	for u, w := range want {
		if r[u] != w {
			t.Fatalf("receipts of %s = %+v, want %+v (all: %v)", u, r[u], w, r)
		}
	}

	// Reading implies delivery, whether or not the device reported it.
	markRead(t, carol, g.Conv, seqs[2])
	if r := receiptsOf(t, bob, g.Conv); r["carol"] != (protocol.Receipt{User: "carol", Delivered: seqs[2], Read: seqs[2]}) {
		t.Fatalf("carol after reading: %+v", r["carol"])
	}

	// dave was offline: his client reports what a sync fetched.
	dave := e.dialDelivered(t, "dave", 100*time.Millisecond)
	if _, err := dave.Sync(ctx, g.Conv, 0, 100); err != nil {
		t.Fatal(err)
	}
	awaitDelivered(t, bob, g.Conv, "dave", last)
	awaitDelivered(t, alice, g.Conv, "dave", last)

	// Explicit reports: behind the marker is no move and no push; past
	// the last message is clamped to it.
	if err := bob.MarkDelivered(ctx, g.Conv, seqs[1]); err != nil {
		t.Fatal(err)
	}
	noEvent(t, alice, 1000*time.Millisecond, protocol.TypeDelivered)
	if err := carol.MarkDelivered(ctx, g.Conv, last+100); err != nil {
		t.Fatal(err)
	}
	awaitDelivered(t, alice, g.Conv, "carol", last)
	if r := receiptsOf(t, alice, g.Conv); r["bob"].Delivered != last || r["carol"] != (protocol.Receipt{User: "carol", Delivered: last, Read: seqs[2]}) {
		t.Fatalf("after the explicit reports: %v", r)
	}

	// Outsiders get nothing.
	mallory := e.dial(t, "mallory")
	wantCode(t, mallory.MarkDelivered(ctx, g.Conv, 1), protocol.CodeForbidden)
	_, err = mallory.Receipts(ctx, g.Conv)
	wantCode(t, err, protocol.CodeForbidden)
	noEvent(t, mallory, 300*time.Millisecond, protocol.TypeDelivered)
}

// TestReceiptsGroupLimit: past 100 members receipts is too_large and
// nobody gets delivered pushes, though the markers are kept.
func TestReceiptsGroupLimit(t *testing.T) {
	e := start(t, func(c *app.Config) { c.Gateway.DeliveredDelay = 100 * time.Millisecond })
	ctx := ctxT(t)
	alice := e.dial(t, "alice")
	// alice, bob and 99 others: one member past the limit.
	others := []string{"bob"}
	for i := range protocol.MaxReceiptsMembers - 1 {
		others = append(others, fmt.Sprint("user", i))
	}
	g, err := alice.CreateGroup(ctx, "big", others...)
	if err != nil {
		t.Fatal(err)
	}
	bob := e.dialDelivered(t, "bob", 50*time.Millisecond)
	ack, err := alice.Send(ctx, g.Conv, "", text("hello all"))
	if err != nil {
		t.Fatal(err)
	}
	nextMessage(t, bob)
	noEvent(t, alice, 1500*time.Millisecond, protocol.TypeDelivered)
	_, err = alice.Receipts(ctx, g.Conv)
	wantCode(t, err, protocol.CodeTooLarge)
	// A group at the limit answers.
	if err := alice.RemoveMember(ctx, g.Conv, "user0"); err != nil {
		t.Fatal(err)
	}
	f, err := alice.Receipts(ctx, g.Conv)
	if err != nil || len(f.Receipts) != protocol.MaxReceiptsMembers {
		t.Fatalf("receipts of %d members: %v", protocol.MaxReceiptsMembers, err)
	}
	for _, r := range f.Receipts {
		if r.User == "bob" && r.Delivered != ack.Seq {
			t.Fatalf("bob's receipt %+v, want delivered %d", r, ack.Seq)
		}
	}
}
