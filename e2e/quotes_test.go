package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// A quote says deleted once its original is deleted, also when the
// deletion came after the reply: in sync, history and thread pages, on
// pages with and without the original, from the stream and, once aged
// out of it, from each store; and nothing of the original's text is left
// in the frame.
func TestQuoteOfLaterDeleted(t *testing.T) { eachStore(t, quoteOfLaterDeleted) }

func quoteOfLaterDeleted(t *testing.T, store func(*app.Config)) {
	e := start(t, hotWindow(4*time.Second), store)
	ctx := ctxT(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	g, err := alice.CreateGroup(ctx, "quotes", "bob")
	if err != nil {
		t.Fatal(err)
	}
	send := func(c *client.Client, body string, opts client.SendOptions) uint64 {
		t.Helper()
		ack, err := c.SendWith(ctx, g.Conv, "", text(body), opts)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Seq
	}
	del := func(seq uint64) {
		t.Helper()
		if _, err := alice.SendKind(ctx, g.Conv, "", protocol.KindDelete, seq, map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	orig := send(alice, "secret original", client.SendOptions{})
	root := send(alice, "root", client.SendOptions{})
	kept := send(alice, "kept original", client.SendOptions{})
	reply := send(bob, "answer", client.SendOptions{ReplyTo: orig})
	inThread := send(bob, "answer in thread", client.SendOptions{Thread: root, ReplyTo: orig})
	toKept := send(bob, "answer to kept", client.SendOptions{ReplyTo: kept})
	orig2 := send(alice, "second secret", client.SendOptions{})
	reply2 := send(bob, "answer 2", client.SendOptions{ReplyTo: orig2})
	// The quotes as sent: nothing was deleted yet.
	if p, err := bob.Sync(ctx, g.Conv, reply-1, 1); err != nil || len(p.Messages) != 1 || p.Messages[0].Quote.Deleted || p.Messages[0].Quote.Snippet != "secret original" {
		t.Fatalf("quote before the deletion: %+v %v", p, err)
	}
	del(orig) // after the replies

	wantDeleted := map[uint64]uint64{reply: orig, inThread: orig} // reply -> original
	check := func(when string, wantDeleted map[uint64]uint64, secrets ...string) {
		t.Helper()
		var pages []*protocol.MessagesFrame
		add := func(p *protocol.MessagesFrame, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			pages = append(pages, p)
		}
		// Whole pages (the original on the page) and one-item pages
		// (the original elsewhere: read from the stream or the store).
		add(bob.Sync(ctx, g.Conv, 0, 100))
		add(bob.History(ctx, g.Conv, 0, 100))
		add(bob.ThreadAfter(ctx, g.Conv, root, 0, 10))
		add(bob.ThreadBefore(ctx, g.Conv, root, 0, 10))
		for r := range wantDeleted {
			add(bob.Sync(ctx, g.Conv, r-1, 1))
			add(bob.History(ctx, g.Conv, r+1, 1))
		}
		add(bob.Sync(ctx, g.Conv, toKept-1, 1))
		seen := map[uint64]int{}
		for i, p := range pages {
			for _, m := range p.Messages {
				if m.Quote == nil {
					continue
				}
				seen[m.Seq]++
				if o, ok := wantDeleted[m.Seq]; ok {
					if *m.Quote != (protocol.Quote{Seq: o, Sender: "alice", Deleted: true}) {
						t.Fatalf("%s: page %d: quote of %d = %+v, want deleted without a snippet", when, i, m.Seq, *m.Quote)
					}
				} else if m.Quote.Deleted || m.Quote.Snippet == "" {
					t.Fatalf("%s: quote of %d = %+v, want its snippet", when, m.Seq, *m.Quote)
				}
			}
		}
		for r := range wantDeleted {
			if seen[r] < 3 {
				t.Fatalf("%s: reply %d seen in %d pages", when, r, seen[r])
			}
		}
		// Nothing of a deleted original is in any frame.
		for _, req := range []map[string]any{
			{"type": "sync", "conv": g.Conv, "after": 0, "limit": 100},
			{"type": "history", "conv": g.Conv, "limit": 100},
			{"type": "thread", "conv": g.Conv, "thread": root, "limit": 10},
			{"type": "sync", "conv": g.Conv, "after": reply - 1, "limit": 1},
		} {
			raw, err := bob.Request(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if strings.Contains(string(raw), s) {
					t.Fatalf("%s: %s frame holds %q: %s", when, req["type"], s, raw)
				}
			}
		}
	}
	check("in the stream", wantDeleted, "secret original")

	historyCaughtUp(t, e)
	waitFor(t, 30*time.Second, func() bool { return streamCount(t, e, g.Conv) == 0 })
	check("aged out of the stream", wantDeleted, "secret original")

	// A deletion the writer may not have stored yet, of an original only
	// the store holds.
	del(orig2)
	wantDeleted[reply2] = orig2
	check("store and stream", wantDeleted, "secret original", "second secret")
	historyCaughtUp(t, e)
	check("all stored", wantDeleted, "secret original", "second secret")
}
