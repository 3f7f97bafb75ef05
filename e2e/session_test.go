package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// A Session whose gateway shuts down (1001) moves to another gateway and
// gets, through sync, what was sent while it was away: each seq once.
func TestSessionResumesOnAnotherGateway(t *testing.T) {
	e := start(t)
	g2 := e.startGateway(t)
	ctx := ctxT(t)
	var mu sync.Mutex
	got := map[uint64]int{}
	s, err := client.NewSession(ctx, client.SessionOptions{
		URLs:       []string{g2.app.WebSocketURL(), e.app.WebSocketURL()},
		Options:    client.Options{Token: token(t, "bob")},
		MinBackoff: 20 * time.Millisecond,
		OnMessage: func(m *protocol.Message, live bool) {
			mu.Lock()
			got[m.Seq]++
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice := e.dial(t, "alice")
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	first, err := alice.Send(ctx, conv.Conv, "1", text("before"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return got[first.Seq] == 1 })
	if err := g2.app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var acks []uint64
	for _, id := range []string{"2", "3", "4"} {
		ack, err := alice.Send(ctx, conv.Conv, id, text("while bob moves"))
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack.Seq)
	}
	waitFor(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, q := range acks {
			if got[q] != 1 {
				return false
			}
		}
		return true
	})
	// Bob's own sends go through the new gateway, retried until acked.
	ack, err := s.Send(ctx, conv.Conv, "b1", text("back"))
	if err != nil || ack.Seq <= acks[2] {
		t.Fatalf("send after the move = %+v, %v", ack, err)
	}
	if s.Connects() != 2 {
		t.Fatalf("connects = %d, want 2", s.Connects())
	}
	mu.Lock()
	defer mu.Unlock()
	for q, n := range got {
		if n != 1 {
			t.Fatalf("seq %d delivered %d times", q, n)
		}
	}
}
