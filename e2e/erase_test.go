package e2e

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/history/scyllastore/scyllatest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/services/erase"
)

// eachStoreHeld runs fn once with the embedded store and once with
// Cassandra, each opened by the test, which reads it directly.
func eachStoreHeld(t *testing.T, fn func(t *testing.T, store history.Store)) {
	t.Run("embedded", func(t *testing.T) {
		s, err := localstore.New(localstore.Config{Dir: filepath.Join(t.TempDir(), "history"), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		fn(t, s)
	})
	t.Run("cassandra", func(t *testing.T) {
		fn(t, scyllatest.Open(t, scyllatest.Config(t, "natter_erase_", 256)))
	})
}

// operatorJS connects to e's NATS as the operator, who reads CHAT and the
// buckets directly.
func (e *env) operatorJS(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(e.app.NATS().OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// streamHolds lists the seqs of the message streams (CHAT, or each
// partition stream) whose stored bytes contain s.
func streamHolds(t testing.TB, js jetstream.JetStream, s string) []uint64 {
	t.Helper()
	var found []uint64
	for _, name := range messageLayout(t, js).ChatStreams() {
		found = append(found, streamHoldsIn(t, js, name, s)...)
	}
	return found
}

func streamHoldsIn(t testing.TB, js jetstream.JetStream, name, s string) []uint64 {
	t.Helper()
	ctx := ctxT(t)
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found []uint64
	// An empty partition stream has first and last seq 0.
	for seq := max(info.State.FirstSeq, 1); seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get CHAT seq %d: %v", seq, err)
		}
		if strings.Contains(string(m.Data), s) {
			found = append(found, seq)
		}
	}
	return found
}

// storeRows reads every row of conv from the store itself.
func storeRows(t testing.TB, s history.Store, conv string) []*protocol.Message {
	t.Helper()
	var all []*protocol.Message
	var after uint64
	for {
		page, more, err := s.After(ctxT(t), conv, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if !more || len(page) == 0 {
			return all
		}
		after = page[len(page)-1].Seq
	}
}

// leaks lists the rows of rows (and their quotes) that contain s.
func leaks(rows []*protocol.Message, s string) []uint64 {
	var out []uint64
	for _, m := range rows {
		if strings.Contains(string(m.Body), s) || m.Quote != nil && strings.Contains(m.Quote.Snippet, s) {
			out = append(out, m.Seq)
		}
	}
	return out
}

// A user deletes their account (delete_account) over a real socket, on
// both stores: the answer comes, every connection of theirs closes with
// 4001 "account erased" and their token no longer logs in; they leave the
// group (the others get the event and the ownership passes on) and the
// direct conversation keeps them; every message they sent (a message, its
// edit, a reaction, a thread reply) is a tombstone in the store (read
// directly), gone from CHAT (read directly) and from search, and served
// as a tombstone at its seq in sync and history (no gap); a quote of
// theirs in another's reply loses its snippet; others' messages stay; their
// device and markers are gone. The operator's natter user erase then
// reports the erasure done, and running it again changes nothing.
func TestDeleteAccount(t *testing.T) {
	eachStoreHeld(t, func(t *testing.T, store history.Store) {
		e := start(t, withSearch(t), func(c *app.Config) { c.History = app.HistoryConfig{Store: store} })
		ctx := ctxT(t)
		alice, alice2, bob, carol := e.dial(t, "alice"), e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "carol")
		g, err := alice.CreateGroup(ctx, "Team", "bob", "carol")
		if err != nil {
			t.Fatal(err)
		}
		d, err := alice.CreateDirect(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		s1 := sendText(t, alice, g.Conv, "secretword one")
		if _, err := alice.SendKind(ctx, g.Conv, "", protocol.KindEdit, s1, text("secretword edited")); err != nil {
			t.Fatal(err)
		}
		keep := sendText(t, bob, g.Conv, "bob keeps this")
		if _, err := alice.SendKind(ctx, g.Conv, "", protocol.KindReaction, keep, map[string]any{"emoji": "secretword"}); err != nil {
			t.Fatal(err)
		}
		quoting, err := bob.SendWith(ctx, g.Conv, "", text("bob quotes"), client.SendOptions{ReplyTo: s1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.SendWith(ctx, g.Conv, "", text("secretword in a thread"), client.SendOptions{Thread: keep}); err != nil {
			t.Fatal(err)
		}
		s2 := sendText(t, alice, d.Conv, "secretword direct")
		sendText(t, bob, d.Conv, "bob direct stays")
		if _, err := request(t, alice, map[string]any{"type": "register_device", "platform": "fcm", "token": "tok-alice"}); err != nil {
			t.Fatal(err)
		}
		if err := alice.MarkRead(ctx, g.Conv, keep); err != nil {
			t.Fatal(err)
		}
		waitSearch(t, bob, "secretword", client.SearchOptions{Conv: d.Conv}, s2)

		// A wrong confirmation is refused and changes nothing.
		_, err = request(t, alice, map[string]any{"type": "delete_account", "user": "bob"})
		wantCode(t, err, protocol.CodeBadRequest)

		res, err := alice.DeleteAccount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.User != "alice" {
			t.Fatalf("account_deleted = %+v", res)
		}
		for _, c := range []*client.Client{alice, alice2} {
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("a connection of the erased user stayed open")
			}
			if c.CloseStatus() != protocol.CloseUnauthorized || c.CloseReason() != protocol.CloseAccountErased.Reason {
				t.Fatalf("closed with %d %q, want %d %q", c.CloseStatus(), c.CloseReason(), protocol.CloseUnauthorized, protocol.CloseAccountErased.Reason)
			}
		}
		if _, err := client.Dial(ctxT(t), e.app.WebSocketURL(), client.Options{Token: token(t, "alice")}); !errors.Is(err, client.ErrUnauthorized) {
			t.Fatalf("the erased user's token logged in again: %v", err)
		}

		// The operator's erase waits for the background run and reports it.
		opNC, opJS := e.operatorJS(t)
		rep, err := erase.Request(ctx, opNC, schema.EraseEndpointRun, "alice")
		if err != nil {
			t.Fatal(err)
		}
		// Five rows of alice's, and bob's reply quoting her (the store keeps
		// it, without the snippet).
		if rep.State != erase.StateDone || rep.Left != 1 || rep.DirectKept != 1 || rep.Messages != 5 || rep.StreamDeleted != 6 ||
			rep.Deletions != 3 || rep.Quotes != 1 || rep.QuotesLeft != 0 || rep.Keys == 0 || rep.PushKeys == 0 {
			t.Fatalf("report %+v", rep)
		}

		// Bob saw alice leave, and owns the group now.
		for {
			ev := nextEvent(t, bob, protocol.TypeMember)
			if ev["user"] == "alice" && ev["action"] == "removed" {
				break
			}
		}
		convs, err := bob.Conversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range convs {
			if c.Conv == g.Conv && (slices.Contains(c.Members, "alice") || c.Owner != "bob") {
				t.Fatalf("group after the erasure: %+v", c)
			}
			if c.Conv == d.Conv && (!slices.Contains(c.Members, "alice") || !slices.Equal(c.Erased, []string{"alice"}) || client.DeletedPeer(c, "bob") != "alice") {
				t.Fatalf("the direct conversation should keep alice, as a deleted account: %+v", c)
			}
		}
		// Nobody can message the deleted account any more.
		_, err = bob.Send(ctx, d.Conv, client.NewClientID(), text("anyone there?"))
		wantCode(t, err, protocol.CodeForbidden)

		// The store, read directly: alice's rows are tombstones, nothing
		// holds the secret, bob's rows stay.
		for _, conv := range []string{g.Conv, d.Conv} {
			rows := storeRows(t, store, conv)
			if l := leaks(rows, "secretword"); len(l) > 0 {
				t.Fatalf("the store still holds the secret in %s at %v", conv, l)
			}
			for _, m := range rows {
				if m.Sender == "alice" && m.Kind != protocol.KindDelete && m.Kind != protocol.KindEvent && !m.Deleted {
					t.Fatalf("alice's row %d in %s is no tombstone: %+v", m.Seq, conv, m)
				}
				if m.Sender == "bob" && m.Kind == protocol.KindMessage && (m.Deleted || !strings.Contains(string(m.Body), "bob")) {
					t.Fatalf("bob's row %d changed: %+v", m.Seq, m)
				}
				// Seqs are per stream: d's rows may repeat g's seqs when
				// the two are in different partition streams.
				if conv == g.Conv && m.Seq == quoting.Seq && (m.Quote == nil || !m.Quote.Deleted || m.Quote.Snippet != "") {
					t.Fatalf("bob's quote of alice's message: %+v", m.Quote)
				}
			}
		}
		// CHAT, read directly: no copy of the secret.
		if got := streamHolds(t, opJS, "secretword"); len(got) > 0 {
			t.Fatalf("CHAT still holds the secret at %v", got)
		}
		if got := streamHolds(t, opJS, "bob keeps this"); len(got) != 1 {
			t.Fatalf("bob's message in CHAT: %v", got)
		}
		// Pages: alice's message is a tombstone at its seq, not a gap.
		page, err := bob.Sync(ctx, g.Conv, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var prev uint64
		found := false
		for _, m := range page.Messages {
			if m.Prev != prev {
				t.Fatalf("sync: seq %d has prev %d, want %d (a gap)", m.Seq, m.Prev, prev)
			}
			prev = m.Seq
			if m.Seq == s1 {
				found = m.Deleted && string(m.Body) == "{}"
			}
			if strings.Contains(string(m.Body), "secretword") || m.Quote != nil && strings.Contains(m.Quote.Snippet, "secretword") {
				t.Fatalf("sync serves the secret: %+v", m)
			}
		}
		if !found {
			t.Fatalf("sync of %s has no tombstone at %d: %+v", g.Conv, s1, page.Messages)
		}
		hist, err := bob.History(ctx, d.Conv, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist.Messages) == 0 || hist.Messages[0].Seq != s2 || !hist.Messages[0].Deleted {
			t.Fatalf("history of the direct conversation: %+v", hist.Messages)
		}
		// Search forgets it.
		waitSearch(t, bob, "secretword", client.SearchOptions{})
		waitSearch(t, carol, "secretword", client.SearchOptions{})
		// Devices and markers are gone.
		for bucket, key := range map[string]string{schema.BucketPush: "d.alice", schema.BucketConversations: conversation.ReadKey(g.Conv, "alice")} {
			kv, err := opJS.KeyValue(ctx, bucket)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Fatalf("%s %s after the erasure: %v", bucket, key, err)
			}
		}
		// Again: nothing more to do, the same report.
		again, err := erase.Request(ctx, opNC, schema.EraseEndpointRun, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if again.Runs != rep.Runs || again.Messages != rep.Messages || again.Finished != rep.Finished {
			t.Fatalf("erasing again changed the report: %+v, was %+v", again, rep)
		}
	})
}

// An erasure stopped half-way (a crash after its first step) finishes on
// the next run: the operator's natter user erase picks it up from the
// record, and the report counts both runs' work.
func TestEraseResumes(t *testing.T) {
	eachStoreHeld(t, func(t *testing.T, store history.Store) {
		e := start(t, func(c *app.Config) { c.History = app.HistoryConfig{Store: store} })
		ctx := ctxT(t)
		dave, erin := e.dial(t, "dave"), e.dial(t, "erin")
		var convs []string
		for i := range 3 {
			g, err := dave.CreateGroup(ctx, "G", "erin")
			if err != nil {
				t.Fatal(err)
			}
			convs = append(convs, g.Conv)
			sendText(t, dave, g.Conv, "resumable secret")
			sendText(t, erin, g.Conv, "erin stays")
			_ = i
		}
		opNC, opJS := e.operatorJS(t)
		er := eraserOf(t, e, opJS, store, 1)
		r, err := er.Run(ctx, "dave")
		if !errors.Is(err, erase.ErrStopped) {
			t.Fatalf("the first run: %v", err)
		}
		if r.Next != 1 || r.State != erase.StateErasing || r.Messages != 1 {
			t.Fatalf("after one step: %+v", r)
		}
		// Half-way: the first conversation is erased, the others not yet.
		if l := leaks(storeRows(t, store, convs[0]), "secret"); len(l) > 0 {
			t.Fatalf("the first conversation still holds the secret: %v", l)
		}
		if l := leaks(storeRows(t, store, convs[2]), "secret"); len(l) != 1 {
			t.Fatalf("the last conversation was erased by a stopped run: %v", l)
		}
		// dave can no longer log in already.
		if _, err := client.Dial(ctxT(t), e.app.WebSocketURL(), client.Options{Token: token(t, "dave")}); !errors.Is(err, client.ErrUnauthorized) {
			t.Fatalf("dave logged in during his erasure: %v", err)
		}
		rep, err := erase.Request(ctx, opNC, schema.EraseEndpointRun, "dave")
		if err != nil {
			t.Fatal(err)
		}
		if rep.State != erase.StateDone || rep.Runs < 2 || rep.Messages != 3 || rep.Left != 3 || rep.StreamDeleted != 3 {
			t.Fatalf("report after the rerun: %+v", rep)
		}
		for _, conv := range convs {
			rows := storeRows(t, store, conv)
			if l := leaks(rows, "secret"); len(l) > 0 {
				t.Fatalf("%s still holds the secret: %v", conv, l)
			}
			if l := leaks(rows, "erin stays"); len(l) != 1 {
				t.Fatalf("erin's message in %s: %v", conv, l)
			}
		}
		if got := streamHolds(t, opJS, "resumable secret"); len(got) > 0 {
			t.Fatalf("CHAT still holds the secret at %v", got)
		}
	})
}

// eraserOf builds an Eraser over e's parts on the operator's connection,
// stopping after stopAfter steps: a run that crashes mid-way.
func eraserOf(t testing.TB, e *env, js jetstream.JetStream, store history.Store, stopAfter int) *erase.Eraser {
	t.Helper()
	ctx := ctxT(t)
	convs, err := conversation.New(ctx, conversation.Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := history.NewStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := history.NewReader(ctx, js, store, stream)
	if err != nil {
		t.Fatal(err)
	}
	er, err := erase.New(ctx, erase.Config{JS: js, Convs: convs, Pages: pages, Store: store.(history.Eraser), StopAfter: stopAfter})
	if err != nil {
		t.Fatal(err)
	}
	return er
}
