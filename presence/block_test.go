package presence

import (
	"context"
	"testing"
	"time"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
)

// A user's presence transitions are not announced to the users they
// blocked; the others still hear them.
func TestServiceSkipsBlockedUsers(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	direct(t, e, "alice", "bob")
	direct(t, e, "alice", "mallory")
	convs, err := conversation.New(ctx, conversation.Config{}, e.js)
	if err != nil {
		t.Fatal(err)
	}
	if err := convs.Block(ctx, "alice", "mallory"); err != nil {
		t.Fatal(err)
	}
	toBob := events(t, e.nc, schema.User("bob", schema.EventPresence))
	toMallory := events(t, e.nc, schema.User("mallory", schema.EventPresence))
	runService(t, e)
	tr := newTracker(t, e.js, TrackerConfig{Gateway: "gw1", LeaseTTL: 10 * time.Second})
	// Both audiences are online, or nothing is sent to them.
	for _, u := range []string{"bob", "mallory"} {
		if err := tr.Connected(ctx, u, u+"-1", ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "bob and mallory online", func() bool {
		return state(t, e.kv, "bob").Online && state(t, e.kv, "mallory").Online
	})
	if err := tr.Connected(ctx, "alice", "a-1", ""); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, toBob, "alice", 5*time.Second); !ev.Online {
		t.Fatalf("bob heard %+v", ev)
	}
	none(t, toMallory, "alice", 300*time.Millisecond)
}
