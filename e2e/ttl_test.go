package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/gocql/gocql"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/attachments"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/history/scyllastore/scyllatest"
	"github.com/natter-chat/natter/protocol"
)

// ttlTest is the short ttl the tests' servers allow (--test-ttl): long
// enough that a loaded machine delivers a message before it disappears,
// short enough to wait for.
const ttlTest = 6

// ttlDeadline bounds every wait for something to disappear: the ttl and
// the second the stores may take, on a machine under load.
const ttlDeadline = 60 * time.Second

// rawRows lists what a store holds of conv, read directly (not through
// the store's reads, which hide expired rows): the seqs of its rows.
type rawRows func(t *testing.T, conv string) []uint64

// TestDisappearingMessages: a message sent under a ttl carries
// expires_at in the ack, the push and pages; once it expires no request
// returns it (history, sync, thread, a reply to it, the conversations
// preview), unread counts leave it out, the CHAT stream and the store
// hold no row of it (read directly: Pebble after the sweep, Cassandra by
// CQL), and the pages' prev chains run over the gap.
func TestDisappearingMessages(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "history")
		st, err := localstore.New(localstore.Config{Dir: dir, NoSync: true, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		closed := false
		t.Cleanup(func() {
			if !closed {
				_ = st.Close()
			}
		})
		raw := func(t *testing.T, conv string) []uint64 {
			// Pebble allows one opener: look through a checkpoint.
			cp := filepath.Join(t.TempDir(), "cp")
			if err := st.Checkpoint(cp); err != nil {
				t.Fatal(err)
			}
			return pebbleRows(t, cp, conv)
		}
		testDisappearing(t, func(c *app.Config) { c.History = app.HistoryConfig{Store: st} }, raw)
	})
	t.Run("cassandra", func(t *testing.T) {
		cfg := scyllatest.Config(t, "natter_e2e_", 256)
		store := scyllatest.Open(t, cfg)
		cluster := gocql.NewCluster(cfg.Hosts...)
		cluster.Keyspace = cfg.Keyspace
		cluster.Timeout = 10 * time.Second
		session, err := cluster.CreateSession()
		if err != nil {
			t.Fatalf("cql session: %v", err)
		}
		t.Cleanup(session.Close)
		raw := func(t *testing.T, conv string) []uint64 {
			var seqs []uint64
			for _, q := range []string{"SELECT seq FROM messages WHERE conv = ? ALLOW FILTERING",
				"SELECT seq FROM thread_replies WHERE conv = ? ALLOW FILTERING"} {
				iter := session.Query(q, conv).Iter()
				var seq int64
				for iter.Scan(&seq) {
					seqs = append(seqs, uint64(seq))
				}
				if err := iter.Close(); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			return seqs
		}
		testDisappearing(t, func(c *app.Config) { c.History = app.HistoryConfig{Store: store} }, raw)
	})
}

func testDisappearing(t *testing.T, store func(*app.Config), raw rawRows) {
	files := t.TempDir()
	e := start(t, store, withSearch(t), func(c *app.Config) {
		c.Conversations.TestTTL = ttlTest
		c.Attachments.Dir = files
		c.Attachments.Service = attachments.Config{SweepEvery: 200 * time.Millisecond}
	})
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	ctx := ctxT(t)
	g, err := alice.CreateGroup(ctx, "ttl", "bob")
	if err != nil {
		t.Fatal(err)
	}
	conv := g.Conv
	nextEvent(t, bob, protocol.TypeConversation)
	keep1, err := alice.Send(ctx, conv, client.NewClientID(), text("keep 1"))
	if err != nil {
		t.Fatal(err)
	}
	if keep1.ExpiresAt != "" {
		t.Fatalf("a message without ttl has expires_at %q", keep1.ExpiresAt)
	}

	// Who may set it, and to what.
	_, err = alice.SetTTL(ctx, conv, 99)
	wantCode(t, err, protocol.CodeBadRequest)
	_, err = bob.SetTTL(ctx, conv, ttlTest)
	wantCode(t, err, protocol.CodeForbidden)
	c, err := alice.SetTTL(ctx, conv, ttlTest)
	if err != nil {
		t.Fatal(err)
	}
	if c.TTL != ttlTest {
		t.Fatalf("conversation after set: ttl %d, want %d", c.TTL, ttlTest)
	}

	// Bob's view of the change: the pushed conversation and an event item.
	for {
		f := nextEvent(t, bob, protocol.TypeConversation, protocol.TypeMessage)
		if f["type"] == protocol.TypeMessage && f["kind"] == protocol.KindEvent {
			body := f["body"].(map[string]any)
			if body["event"] != protocol.EventTTL || body["ttl"] != float64(ttlTest) {
				t.Fatalf("ttl event item %v", f)
			}
			break
		}
	}

	file, err := alice.UploadBytes(ctx, "text/plain", "secret.txt", []byte("secret file"))
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	secret, err := alice.Send(ctx, conv, client.NewClientID(), map[string]any{"text": "secret", "attachments": []string{file}})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret.Files) != 1 || secret.Files[0].Expires > secret.ExpiresAt {
		t.Fatalf("ack files %+v: want one, its URL expiring by %s", secret.Files, secret.ExpiresAt)
	}
	exp, ok := protocol.ParseExpiry(secret.ExpiresAt)
	if !ok {
		t.Fatalf("ack of a message under ttl has no expires_at: %+v", secret)
	}
	ts, _ := time.Parse(time.RFC3339Nano, secret.TS)
	if d := exp.Sub(ts); d != ttlTest*time.Second {
		t.Fatalf("expires_at - ts = %v, want %ds", d, ttlTest)
	}
	// A reply quoting it and its edit disappear with it; an edit's own
	// expiry is no later than its target's.
	reply, err := alice.Reply(ctx, conv, secret.Seq, text("re: secret"))
	if err != nil {
		t.Fatal(err)
	}
	edit, err := alice.SendKind(ctx, conv, client.NewClientID(), protocol.KindEdit, secret.Seq, text("secret, edited"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*protocol.Ack{reply, edit} {
		if a.ExpiresAt != secret.ExpiresAt {
			t.Fatalf("ack %d expires_at %q, want the target's %q", a.Seq, a.ExpiresAt, secret.ExpiresAt)
		}
	}
	// Bob gets the push with expires_at, if it came before it expired (a
	// push that arrives later is dropped by the client).
	for time.Now().Before(exp) {
		wctx, cancel := context.WithDeadline(ctx, exp)
		ev, err := bob.NextEvent(wctx, protocol.TypeMessage)
		cancel()
		if err != nil {
			break
		}
		var m protocol.Message
		if err := ev.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m.Seq == secret.Seq {
			if m.ExpiresAt != secret.ExpiresAt {
				t.Fatalf("push expires_at %q, ack %q", m.ExpiresAt, secret.ExpiresAt)
			}
			break
		}
	}
	if time.Since(sent) < ttlTest*time.Second/2 {
		// Still well before expiry: pages have it, with expires_at.
		page, err := bob.Sync(ctx, conv, keep1.Seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(page.Messages, func(m *protocol.Message) bool { return m.Seq == secret.Seq })
		if i >= 0 && page.Messages[i].ExpiresAt != secret.ExpiresAt {
			t.Fatalf("page item expires_at %q, want %q", page.Messages[i].ExpiresAt, secret.ExpiresAt)
		}
	}

	// Off again: the next message stays.
	if _, err := alice.SetTTL(ctx, conv, 0); err != nil {
		t.Fatal(err)
	}
	keep2, err := alice.Send(ctx, conv, client.NewClientID(), text("keep 2"))
	if err != nil {
		t.Fatal(err)
	}
	if keep2.ExpiresAt != "" {
		t.Fatalf("ttl off, yet expires_at %q", keep2.ExpiresAt)
	}

	// The index follows the stream in order: once keep 2 is found the
	// disappearing ones were indexed (search finds them until they
	// expire: TestSearchDisappearing).
	waitSearch(t, bob, "keep", client.SearchOptions{Conv: conv}, keep2.Seq, keep1.Seq)

	gone := []uint64{secret.Seq, reply.Seq, edit.Seq}
	// The stream drops them (Nats-TTL).
	nc, err := nats.Connect(e.app.NATS().OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	chat, err := js.Stream(ctx, messageLayout(t, js).StreamOf(conv))
	if err != nil {
		t.Fatal(err)
	}
	if !chat.CachedInfo().Config.AllowMsgTTL {
		t.Fatal("CHAT does not allow per-message TTLs")
	}
	eventually(t, "the CHAT stream drops the expired messages", func() error {
		for _, seq := range gone {
			if _, err := chat.GetMsg(ctx, seq); !errors.Is(err, jetstream.ErrMsgNotFound) {
				return fmt.Errorf("seq %d: %v", seq, err)
			}
		}
		return nil
	})
	// Search no longer finds them.
	if got, _ := searchSeqs(t, bob, "secret", client.SearchOptions{Conv: conv}); len(got) > 0 {
		t.Fatalf("search finds expired messages %v", got)
	}
	// The store holds no row of them.
	eventually(t, "the store drops the expired rows", func() error {
		rows := raw(t, conv)
		for _, seq := range gone {
			if slices.Contains(rows, seq) {
				return fmt.Errorf("store still holds seq %d (rows %v)", seq, rows)
			}
		}
		if !slices.Contains(rows, keep1.Seq) || !slices.Contains(rows, keep2.Seq) {
			return fmt.Errorf("store lacks the messages that stay (rows %v)", rows)
		}
		return nil
	})

	// Its attachment is deleted with it.
	eventually(t, "the expired message's attachment is deleted", func() error {
		if _, err := os.Stat(filepath.Join(files, file)); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("file %s: %v", file, err)
		}
		return nil
	})
	if _, _, err := alice.Fetch(ctx, secret.Files[0].URL); err == nil {
		t.Fatal("the expired attachment's URL still serves it")
	}

	// No request returns them.
	notIn := func(what string, page *protocol.MessagesFrame) {
		t.Helper()
		for _, m := range page.Messages {
			if slices.Contains(gone, m.Seq) {
				t.Fatalf("%s returns expired seq %d", what, m.Seq)
			}
		}
	}
	raw0, err := bob.Request(ctx, map[string]any{"type": "sync", "conv": conv, "after": 0, "limit": 100})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw0), "secret") {
		t.Fatalf("sync from 0 still shows the expired text: %s", raw0)
	}
	all, err := bob.Sync(ctx, conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	notIn("sync", all)
	// prev runs over the gap: each item names the one before it.
	var prev uint64
	for _, m := range all.Messages {
		if m.Prev != prev {
			t.Fatalf("item %d has prev %d, want %d (the item before it)", m.Seq, m.Prev, prev)
		}
		prev = m.Seq
	}
	if !slices.ContainsFunc(all.Messages, func(m *protocol.Message) bool { return m.Seq == keep2.Seq }) {
		t.Fatal("sync lacks the message sent after ttl was turned off")
	}
	hist, err := bob.History(ctx, conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	notIn("history", hist)
	after, err := bob.Sync(ctx, conv, keep1.Seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	notIn("sync after", after)
	if len(after.Messages) == 0 || after.Messages[0].Prev != keep1.Seq {
		t.Fatalf("sync after keep 1 starts with %+v, want prev %d", after.Messages, keep1.Seq)
	}
	thread, err := bob.ThreadAfter(ctx, conv, secret.Seq, 0, 10)
	if err == nil {
		notIn("thread", thread)
	} else {
		wantCode(t, err, protocol.CodeNotFound)
	}
	_, err = alice.Reply(ctx, conv, secret.Seq, text("late"))
	wantCode(t, err, protocol.CodeNotFound)
	// Unread: bob read nothing; keep 1, keep 2 and alice's late reply
	// attempt (refused) leave two plain messages.
	eventually(t, "bob's conversation lists the messages that stay", func() error {
		convs, err := bob.Conversations(ctx)
		if err != nil {
			return err
		}
		for _, c := range convs {
			if c.Conv != conv {
				continue
			}
			if c.Unread != 2 {
				return fmt.Errorf("unread %d, want 2", c.Unread)
			}
			if c.Last == nil || slices.Contains(gone, c.Last.Seq) {
				return fmt.Errorf("preview %+v", c.Last)
			}
			return nil
		}
		return errors.New("conversation not listed")
	})
}

// TestDirectTTL: in a direct conversation either member sets the ttl,
// and ttl is its only setting.
func TestDirectTTL(t *testing.T) {
	e := start(t, func(c *app.Config) { c.Conversations.TestTTL = ttlTest })
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	ctx := ctxT(t)
	d, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, d.Conv, client.NewClientID(), text("hi")); err != nil {
		t.Fatal(err) // accepts the request
	}
	c, err := bob.SetTTL(ctx, d.Conv, 3600)
	if err != nil {
		t.Fatal(err)
	}
	if c.TTL != 3600 {
		t.Fatalf("ttl %d after bob set it", c.TTL)
	}
	ack, err := alice.Send(ctx, d.Conv, client.NewClientID(), text("one hour"))
	if err != nil {
		t.Fatal(err)
	}
	exp, ok := protocol.ParseExpiry(ack.ExpiresAt)
	ts, _ := time.Parse(time.RFC3339Nano, ack.TS)
	if !ok || exp.Sub(ts) != time.Hour {
		t.Fatalf("ack %+v: want expires_at an hour after ts", ack)
	}
	if c, err = alice.SetTTL(ctx, d.Conv, 0); err != nil || c.TTL != 0 {
		t.Fatalf("alice turns it off: %+v, %v", c, err)
	}
	title := "x"
	_, err = alice.Update(ctx, d.Conv, client.GroupUpdate{Title: &title})
	wantCode(t, err, protocol.CodeBadRequest)
}

// eventually polls check until it returns nil, failing at ttlDeadline.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(ttlDeadline)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not after %v: %v", what, ttlDeadline, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// pebbleRows lists the seqs of conv's keys in every table of the
// embedded store at dir: rows, plain and thread index entries, expiry
// entries (the key layout of history/localstore/keys.go).
func pebbleRows(t *testing.T, dir, conv string) []uint64 {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var seqs []uint64
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if i := strings.Index(string(k), string(append([]byte{byte(len(conv))}, conv...))); i >= 0 && len(k) >= i+1+len(conv)+8 {
			s := k[i+1+len(conv) : i+1+len(conv)+8]
			seqs = append(seqs, uint64(s[0])<<56|uint64(s[1])<<48|uint64(s[2])<<40|uint64(s[3])<<32|uint64(s[4])<<24|uint64(s[5])<<16|uint64(s[6])<<8|uint64(s[7]))
		}
	}
	return seqs
}

// TestRetention: a group's owner keeps messages N days; a message sent
// under it carries expires_at N days after its ts, or the ttl's when that
// is shorter; a message sent before keeps none; a plain member may not
// set it, and a value out of range is refused.
func TestRetention(t *testing.T) {
	e := start(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	ctx := ctxT(t)
	g, err := alice.CreateGroup(ctx, "kept", "bob")
	if err != nil {
		t.Fatal(err)
	}
	before, err := alice.Send(ctx, g.Conv, client.NewClientID(), text("before"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.SetRetention(ctx, g.Conv, 30)
	wantCode(t, err, protocol.CodeForbidden)
	_, err = alice.SetRetention(ctx, g.Conv, protocol.MaxRetentionDays+1)
	wantCode(t, err, protocol.CodeBadRequest)
	c, err := alice.SetRetention(ctx, g.Conv, 30)
	if err != nil {
		t.Fatal(err)
	}
	if c.RetentionDays != 30 {
		t.Fatalf("retention_days %d after set", c.RetentionDays)
	}
	lifetime := func(a *protocol.Ack) time.Duration {
		t.Helper()
		exp, ok := protocol.ParseExpiry(a.ExpiresAt)
		ts, _ := time.Parse(time.RFC3339Nano, a.TS)
		if !ok {
			t.Fatalf("ack %+v has no expires_at", a)
		}
		return exp.Sub(ts)
	}
	kept, err := alice.Send(ctx, g.Conv, client.NewClientID(), text("kept 30 days"))
	if err != nil {
		t.Fatal(err)
	}
	if d := lifetime(kept); d != 30*24*time.Hour {
		t.Fatalf("a message under 30 days' retention lives %v", d)
	}
	if _, err := alice.SetTTL(ctx, g.Conv, 3600); err != nil {
		t.Fatal(err)
	}
	short, err := alice.Send(ctx, g.Conv, client.NewClientID(), text("an hour"))
	if err != nil {
		t.Fatal(err)
	}
	if d := lifetime(short); d != time.Hour {
		t.Fatalf("ttl 1h under 30 days' retention: lives %v", d)
	}
	page, err := bob.Sync(ctx, g.Conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Messages {
		if m.Seq == before.Seq && m.ExpiresAt != "" {
			t.Fatalf("a message sent before the retention got expires_at %q", m.ExpiresAt)
		}
		if m.Kind == protocol.KindEvent {
			if ev, _ := client.GroupEvent(m); ev != nil && ev.Event == protocol.EventRetention && (ev.RetentionDays == nil || *ev.RetentionDays != 30) {
				t.Fatalf("retention item %+v", ev)
			}
		}
	}
}
