package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// Replies quote what they answer and threads hang under their root, live
// and in pages, from the stream and, once aged out of it, from each store.
func TestRepliesAndThreads(t *testing.T) { eachStore(t, repliesAndThreads) }

func repliesAndThreads(t *testing.T, store func(*app.Config)) {
	e := start(t, hotWindow(4*time.Second), store)
	ctx := ctxT(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	g, err := alice.CreateGroup(ctx, "threads", "bob")
	if err != nil {
		t.Fatal(err)
	}
	other := e.groupInStreamOf(t, alice, g.Conv, "elsewhere", "bob")
	elsewhere, err := alice.Send(ctx, other.Conv, "", text("elsewhere"))
	if err != nil {
		t.Fatal(err)
	}
	nextMessage(t, bob)

	rootAck, err := alice.Send(ctx, g.Conv, "", text("the  root\n message"))
	if err != nil {
		t.Fatal(err)
	}
	root := nextMessage(t, bob)

	// A reply: the push carries the quote the server filled.
	replyAck, err := bob.Reply(ctx, g.Conv, rootAck.Seq, text("a reply"))
	if err != nil {
		t.Fatal(err)
	}
	reply := nextMessage(t, alice)
	wantQuote := protocol.Quote{Seq: rootAck.Seq, Sender: "alice", Snippet: "the root message"}
	if reply.Seq != replyAck.Seq || reply.ReplyTo != rootAck.Seq || reply.Quote == nil || *reply.Quote != wantQuote {
		t.Fatalf("reply push %+v quote %+v, want quote %+v", reply, reply.Quote, wantQuote)
	}

	// Thread replies: pushed with thread; a live client counts them on
	// the root it holds, as pages would.
	var thread []uint64
	for i, c := range []*client.Client{bob, alice, bob} {
		ack, err := c.SendInThread(ctx, g.Conv, rootAck.Seq, text(fmt.Sprintf("in thread %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		thread = append(thread, ack.Seq)
		listener := alice
		if c == alice {
			listener = bob
		}
		push := nextMessage(t, listener)
		if push.Thread != rootAck.Seq || push.Seq != ack.Seq {
			t.Fatalf("thread reply push %+v, want thread %d", push, rootAck.Seq)
		}
		if listener == bob && !client.ApplyThreadReply(root, push) {
			t.Fatalf("ApplyThreadReply(%+v) changed nothing", push)
		}
	}
	if root.ThreadCount != 1 || root.ThreadLastSeq != thread[1] {
		t.Fatalf("bob's root after the pushes he got: %d/%d", root.ThreadCount, root.ThreadLastSeq)
	}

	// A reply in the thread quoting the main reply, and a reply to a
	// message deleted before it.
	inThreadReply, err := alice.SendWith(ctx, g.Conv, "", text("quoting in thread"), client.SendOptions{Thread: rootAck.Seq, ReplyTo: replyAck.Seq})
	if err != nil {
		t.Fatal(err)
	}
	thread = append(thread, inThreadReply.Seq)
	gone, err := alice.Send(ctx, g.Conv, "", text("soon gone"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendKind(ctx, g.Conv, "", protocol.KindDelete, gone.Seq, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	toGone, err := bob.Reply(ctx, g.Conv, gone.Seq, text("what was that?"))
	if err != nil {
		t.Fatal(err)
	}

	// The owner deletes bob's reply: a moderator delete, stored with
	// deleted_by in both stores.
	if _, err := alice.SendKind(ctx, g.Conv, "", protocol.KindDelete, toGone.Seq, map[string]any{}); err != nil {
		t.Fatal(err)
	}

	// Refusals.
	_, err = bob.Reply(ctx, g.Conv, elsewhere.Seq, text("x"))
	wantCode(t, err, protocol.CodeNotFound) // another conversation's message
	_, err = bob.Reply(ctx, g.Conv, toGone.Seq+1000, text("x"))
	wantCode(t, err, protocol.CodeNotFound)
	_, err = bob.SendInThread(ctx, g.Conv, thread[0], text("x"))
	wantCode(t, err, protocol.CodeBadRequest) // one level only
	_, err = bob.SendInThread(ctx, g.Conv, elsewhere.Seq, text("x"))
	wantCode(t, err, protocol.CodeNotFound)
	_, err = request(t, bob, map[string]any{"type": "send", "id": "e", "conv": g.Conv, "client_id": "k1",
		"kind": "reaction", "ref": rootAck.Seq, "thread": rootAck.Seq, "body": map[string]any{}})
	wantCode(t, err, protocol.CodeBadRequest) // only a plain message goes in a thread
	_, err = bob.ThreadAfter(ctx, g.Conv, thread[0], 0, 10)
	wantCode(t, err, protocol.CodeBadRequest) // not a root
	_, err = bob.ThreadAfter(ctx, g.Conv, elsewhere.Seq, 0, 10)
	wantCode(t, err, protocol.CodeNotFound)
	_, err = request(t, bob, map[string]any{"type": "thread", "id": "t", "conv": g.Conv, "thread": rootAck.Seq, "after": 0, "before": 5})
	wantCode(t, err, protocol.CodeBadRequest)

	// Every thread page carries the root as it reads now, with its counts.
	checkRoot := func(when string, page *protocol.MessagesFrame, thread []uint64) {
		t.Helper()
		r := page.Root
		var body struct{ Text string }
		if r != nil {
			_ = json.Unmarshal(r.Body, &body)
		}
		if r == nil || r.Seq != rootAck.Seq || r.Sender != "alice" || r.Thread != 0 || r.Deleted || body.Text != "the  root\n message" ||
			r.ThreadCount != uint64(len(thread)) || r.ThreadLastSeq != thread[len(thread)-1] {
			t.Fatalf("%s: thread page root %+v, want seq %d with thread_count %d", when, r, rootAck.Seq, len(thread))
		}
	}
	check := func(when string, thread []uint64) {
		t.Helper()
		for _, limit := range []int{1, 2, 50} {
			var fwd, back []uint64
			var after uint64
			for {
				page, err := bob.ThreadAfter(ctx, g.Conv, rootAck.Seq, after, limit)
				if err != nil {
					t.Fatalf("%s: %v", when, err)
				}
				if page.Thread != rootAck.Seq || len(page.Messages) > limit {
					t.Fatalf("%s: page thread %d, %d messages", when, page.Thread, len(page.Messages))
				}
				checkRoot(when, page, thread)
				for _, m := range page.Messages {
					fwd = append(fwd, m.Seq)
				}
				if !page.More {
					break
				}
				after = page.Messages[len(page.Messages)-1].Seq
			}
			var before uint64
			for {
				page, err := bob.ThreadBefore(ctx, g.Conv, rootAck.Seq, before, limit)
				if err != nil {
					t.Fatalf("%s: %v", when, err)
				}
				checkRoot(when, page, thread)
				var seqs []uint64
				for _, m := range page.Messages {
					seqs = append(seqs, m.Seq)
				}
				back = append(seqs, back...)
				if !page.More {
					break
				}
				before = page.Messages[0].Seq
			}
			if !slices.Equal(fwd, thread) || !slices.Equal(back, thread) {
				t.Fatalf("%s, pages of %d: after %v, before %v, want %v", when, limit, fwd, back, thread)
			}
		}
		page, err := bob.Sync(ctx, g.Conv, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		bySeq := map[uint64]*protocol.Message{}
		for _, m := range page.Messages {
			bySeq[m.Seq] = m
		}
		r := bySeq[rootAck.Seq]
		if r == nil || r.ThreadCount != uint64(len(thread)) || r.ThreadLastSeq != thread[len(thread)-1] {
			t.Fatalf("%s: root in sync %+v, want thread_count %d", when, r, len(thread))
		}
		if m := bySeq[replyAck.Seq]; m == nil || m.Quote == nil || *m.Quote != wantQuote {
			t.Fatalf("%s: reply in sync %+v", when, m)
		}
		wantInThread := protocol.Quote{Seq: replyAck.Seq, Sender: "bob", Snippet: "a reply"}
		if m := bySeq[inThreadReply.Seq]; m == nil || m.Thread != rootAck.Seq || m.Quote == nil || *m.Quote != wantInThread {
			t.Fatalf("%s: reply in thread in sync %+v", when, m)
		}
		if m := bySeq[toGone.Seq]; m == nil || m.Quote == nil || *m.Quote != (protocol.Quote{Seq: gone.Seq, Sender: "alice", Deleted: true}) ||
			!m.Deleted || m.DeletedBy != "alice" {
			t.Fatalf("%s: reply to a deleted message, deleted by a moderator, in sync %+v quote %+v", when, m, m.Quote)
		}
		if m := bySeq[gone.Seq]; m == nil || !m.Deleted || m.DeletedBy != "" {
			t.Fatalf("%s: message deleted by its sender in sync %+v", when, m)
		}
		hist, err := bob.History(ctx, g.Conv, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range hist.Messages {
			if s := bySeq[m.Seq]; s == nil || s.ThreadCount != m.ThreadCount || (s.Quote == nil) != (m.Quote == nil) {
				t.Fatalf("%s: history's %+v differs from sync's %+v", when, m, s)
			}
		}
	}
	check("live", thread)

	historyCaughtUp(t, e)
	waitFor(t, 30*time.Second, func() bool { return streamCount(t, e, g.Conv) == 0 })
	check("aged out of the stream", thread)

	// A reply quoting and a thread reply under a root only the store
	// holds; the new reply comes from the stream, the root from the store.
	late, err := alice.SendWith(ctx, g.Conv, "", text("late"), client.SendOptions{Thread: rootAck.Seq, ReplyTo: thread[0]})
	if err != nil {
		t.Fatal(err)
	}
	thread = append(thread, late.Seq)
	check("store and stream", thread)

	// Thread replies count toward unread like any message
	// (docs/protocol.md, Replies and threads).
	markRead(t, bob, g.Conv, late.Seq)
	if _, err := alice.SendInThread(ctx, g.Conv, rootAck.Seq, text("unread?")); err != nil {
		t.Fatal(err)
	}
	// The inbox follows the fan-out, not the ack: wait for it.
	unread := -1
	waitFor(t, 15*time.Second, func() bool {
		convs, err := bob.Conversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range convs {
			if c.Conv == g.Conv {
				unread = int(c.Unread)
			}
		}
		return unread == 1
	})
}
