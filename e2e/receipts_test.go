package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

func markRead(t *testing.T, c *client.Client, conv string, seq uint64) {
	t.Helper()
	if _, err := request(t, c, map[string]any{"type": "read", "id": "r", "conv": conv, "seq": seq}); err != nil {
		t.Fatal(err)
	}
}

func TestReadMarkers(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob, bob2 := e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "bob")
	g, err := alice.CreateGroup(ctx, "reads", "bob")
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
	// Sending moved alice's own marker.
	list, err := alice.Conversations(ctx)
	if err != nil || list[0].ReadSeq != last || list[0].Unread != 0 || list[0].LastSeq != last {
		t.Fatalf("alice's conversations = %+v, %v", list[0], err)
	}
	list, err = bob.Conversations(ctx)
	if err != nil || list[0].ReadSeq != 0 || list[0].Unread != 5 {
		t.Fatalf("bob's conversations before reading = %+v, %v", list[0], err)
	}

	markRead(t, bob, g.Conv, seqs[2])
	for name, c := range map[string]*client.Client{"alice": alice, "bob's other device": bob2, "bob's reading device": bob} {
		ev := nextEvent(t, c, protocol.TypeRead)
		if ev["conv"] != g.Conv || ev["user"] != "bob" || ev["seq"] != float64(seqs[2]) {
			t.Fatalf("%s got %v", name, ev)
		}
	}
	list, _ = bob2.Conversations(ctx)
	if list[0].ReadSeq != seqs[2] || list[0].Unread != 2 {
		t.Fatalf("after reading to %d: %+v", seqs[2], list[0])
	}
	// At or below the marker: ignored, no event.
	markRead(t, bob, g.Conv, seqs[1])
	markRead(t, bob, g.Conv, seqs[2])
	noEvent(t, alice, 300*time.Millisecond, protocol.TypeRead)
	// Beyond last_seq: clamped.
	markRead(t, bob, g.Conv, last+1000)
	if ev := nextEvent(t, alice, protocol.TypeRead); ev["seq"] != float64(last) {
		t.Fatalf("clamped read = %v, want seq %d", ev, last)
	}
	// A non-member's read is forbidden.
	mallory := e.dial(t, "mallory")
	_, err = request(t, mallory, map[string]any{"type": "read", "id": "x", "conv": g.Conv, "seq": 1})
	wantCode(t, err, protocol.CodeForbidden)
}

// Devices of one user racing to move the marker never move it backwards.
func TestReadMarkerConcurrentDevices(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice := e.dial(t, "alice")
	g, err := alice.CreateGroup(ctx, "race", "bob")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for i := range 40 {
		ack, err := alice.Send(ctx, g.Conv, "", text(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Seq)
	}
	devices := []*client.Client{e.dial(t, "bob"), e.dial(t, "bob"), e.dial(t, "bob"), e.dial(t, "bob")}
	var wg sync.WaitGroup
	for d, c := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each device reads in its own order, some going backwards.
			for i := range seqs {
				k := (i*7 + d*13) % len(seqs)
				if _, err := c.Request(ctx, map[string]any{"type": "read", "conv": g.Conv, "seq": seqs[k]}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	list, err := devices[0].Conversations(ctx)
	if err != nil || list[0].ReadSeq != seqs[len(seqs)-1] || list[0].Unread != 0 {
		t.Fatalf("after the race: %+v, %v", list[0], err)
	}
	// The events bob's first device saw only ever move forwards.
	var prev float64
	for {
		ctx2, cancel := contextWithTimeout(300 * time.Millisecond)
		ev, err := devices[0].NextEvent(ctx2, protocol.TypeRead)
		cancel()
		if err != nil {
			break
		}
		var m map[string]any
		_ = ev.Decode(&m)
		if s := m["seq"].(float64); s <= prev {
			t.Fatalf("read events went from %v to %v", prev, s)
		} else {
			prev = s
		}
	}
}

// A client that reconnects sees how much it missed.
func TestUnreadAfterReconnect(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice := e.dial(t, "alice")
	bob := e.dial(t, "bob")
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	first, err := alice.Send(ctx, conv.Conv, "", text("seen"))
	if err != nil {
		t.Fatal(err)
	}
	markRead(t, bob, conv.Conv, first.Seq)
	_ = bob.Close()
	for i := range 7 {
		if _, err := alice.Send(ctx, conv.Conv, "", text(fmt.Sprint("missed ", i))); err != nil {
			t.Fatal(err)
		}
	}
	// An edit is not an unread message.
	if _, err := alice.SendKind(ctx, conv.Conv, "", protocol.KindEdit, first.Seq, text("seen!")); err != nil {
		t.Fatal(err)
	}
	bob = e.dial(t, "bob")
	list, err := bob.Conversations(ctx)
	if err != nil || list[0].ReadSeq != first.Seq || list[0].Unread != 7 {
		t.Fatalf("after reconnect: %+v, %v", list[0], err)
	}
	page, err := bob.Sync(ctx, conv.Conv, list[0].ReadSeq, 100)
	if err != nil || len(page.Messages) != 8 || page.More {
		t.Fatalf("sync = %d messages, more %v, %v", len(page.Messages), page.More, err)
	}
}

// Sending reads up to one's own message, without a marker write per send:
// read_seq and unread count from the sender's last message, on the
// sender's gateway at once and on another gateway within the gateway's
// OwnMarkerDelay (5 s), and a read up to one's own message is no move.
func TestUnreadAfterOwnSends(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	g, err := alice.CreateGroup(ctx, "own", "bob")
	if err != nil {
		t.Fatal(err)
	}
	send := func(c *client.Client, s string) uint64 {
		t.Helper()
		ack, err := c.Send(ctx, g.Conv, "", text(s))
		if err != nil {
			t.Fatal(err)
		}
		return ack.Seq
	}
	send(alice, "a1")
	send(bob, "b1")
	send(bob, "b2")
	a2 := send(alice, "a2") // a reply: b1 and b2 were read
	send(bob, "b3")
	b4 := send(bob, "b4")
	edit, err := bob.SendKind(ctx, g.Conv, "", protocol.KindEdit, b4, text("b4!"))
	if err != nil {
		t.Fatal(err)
	}

	// Alice's other device, on another gateway, sees the marker once
	// alice's gateway wrote it.
	other := e.startGateway(t)
	alice2, err := client.Dial(ctx, other.app.WebSocketURL(), client.Options{Token: token(t, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = alice2.Close() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		list, err := alice2.Conversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if list[0].ReadSeq == a2 && list[0].Unread == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's conversation on another gateway = %+v; want read_seq %d, unread 2", list[0], a2)
		}
	}
	for name, tc := range map[string]struct {
		c            *client.Client
		read, unread uint64
	}{"alice": {alice, a2, 2}, "bob": {bob, edit.Seq, 0}} {
		list, err := tc.c.Conversations(ctx)
		if err != nil || list[0].ReadSeq != tc.read || list[0].Unread != tc.unread {
			t.Fatalf("%s's conversation = %+v, %v; want read_seq %d, unread %d", name, list[0], err, tc.read, tc.unread)
		}
	}
	// Reading up to her own message moves nothing: bob hears nothing.
	markRead(t, alice, g.Conv, a2)
	noEvent(t, bob, 300*time.Millisecond, protocol.TypeRead)
}
