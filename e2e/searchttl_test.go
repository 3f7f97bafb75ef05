package e2e

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// A message sent under a ttl (or a retention: the same expires_at) is
// found until it expires, however far off that is, and from expires_at on
// never, also before the indexer removes it from the index (here it would
// do so only after an hour: what hides it is the query).
func TestSearchDisappearing(t *testing.T) {
	e := start(t, withSearch(t), func(c *app.Config) {
		c.Conversations.TestTTL = ttlTest
		c.Search.Indexer.ExpireEvery = time.Hour
	})
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	ctx := ctxT(t)
	g, err := alice.CreateGroup(ctx, "ttl search", "bob")
	if err != nil {
		t.Fatal(err)
	}
	opts := client.SearchOptions{Conv: g.Conv}
	if _, err := alice.SetTTL(ctx, g.Conv, 3600); err != nil {
		t.Fatal(err)
	}
	hour, err := alice.Send(ctx, g.Conv, client.NewClientID(), text("harbour in an hour"))
	if err != nil {
		t.Fatal(err)
	}
	if hour.ExpiresAt == "" {
		t.Fatal("a message under a 1 h ttl has no expires_at")
	}
	waitSearch(t, bob, "harbour", opts, hour.Seq)

	if _, err := alice.SetTTL(ctx, g.Conv, ttlTest); err != nil {
		t.Fatal(err)
	}
	short, err := alice.Send(ctx, g.Conv, client.NewClientID(), text("harbour for a moment"))
	if err != nil {
		t.Fatal(err)
	}
	exp, ok := protocol.ParseExpiry(short.ExpiresAt)
	if !ok {
		t.Fatalf("no expires_at under a %d s ttl: %+v", ttlTest, short)
	}
	if _, err := alice.SetTTL(ctx, g.Conv, 0); err != nil {
		t.Fatal(err)
	}
	last := sendText(t, alice, g.Conv, "harbour for ever")
	// The index follows the stream in order: once the last is found, the
	// short one was indexed. Before its expiry it is found (if the index
	// got there in time on a loaded machine).
	for deadline := time.Now().Add(15 * time.Second); ; {
		got, _ := searchSeqs(t, bob, "harbour", opts)
		if len(got) > 0 && got[0] == last {
			if time.Now().Before(exp) && (len(got) != 3 || got[1] != short.Seq || got[2] != hour.Seq) {
				t.Fatalf("before expiry: %v, want [%d %d %d]", got, last, short.Seq, hour.Seq)
			}
			if time.Now().After(exp) {
				t.Logf("the index got to the %d s message only after it expired", ttlTest)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("search %v, want %d first", got, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Until(exp) + 100*time.Millisecond)
	got, _ := searchSeqs(t, bob, "harbour", opts)
	if len(got) != 2 || got[0] != last || got[1] != hour.Seq {
		t.Fatalf("after expires_at: %v, want [%d %d] (the expired %d left out)", got, last, hour.Seq, short.Seq)
	}
	got, _ = searchSeqs(t, bob, "moment", opts)
	if len(got) != 0 {
		t.Fatalf("the expired message is found: %v", got)
	}
}
