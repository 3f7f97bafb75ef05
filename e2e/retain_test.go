package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/history/scyllastore/scyllatest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// TestRetentionSweep: messages a conversation already held when its
// owner set retention_days, older than the retention, are removed by the
// retention sweeper: from the CHAT stream, the history store (read
// directly: a Pebble checkpoint, CQL on messages and thread_replies), the
// search index and the attachments; no page returns them, unread and
// mention counts leave them out, and what is newer stays. A retention is
// at least a day, so the sweeper's clock is moved 30 days ahead.
func TestRetentionSweep(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "history")
		st, err := localstore.New(localstore.Config{Dir: dir, NoSync: true, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		raw := func(t *testing.T, conv string) []uint64 {
			cp := filepath.Join(t.TempDir(), "cp")
			if err := st.Checkpoint(cp); err != nil {
				t.Fatal(err)
			}
			return pebbleRows(t, cp, conv)
		}
		testRetentionSweep(t, func(c *app.Config) { c.History = app.HistoryConfig{Store: st} }, raw)
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
		testRetentionSweep(t, func(c *app.Config) { c.History = app.HistoryConfig{Store: store} }, raw)
	})
}

func testRetentionSweep(t *testing.T, store func(*app.Config), raw rawRows) {
	files := t.TempDir()
	var clock atomic.Pointer[time.Time] // the sweeper's now; nil: the real one
	e := start(t, store, withSearch(t), func(c *app.Config) {
		c.Attachments.Dir = files
		c.RetentionSweep = 200 * time.Millisecond
		c.RetentionNow = func() time.Time {
			if now := clock.Load(); now != nil {
				return *now
			}
			return time.Now()
		}
	})
	// Bob reads nothing (his marker stays at 0, so every old message
	// would count as unread); carol replies and reacts.
	alice, bob, carol := e.dial(t, "alice"), e.dial(t, "bob"), e.dial(t, "carol")
	ctx := ctxT(t)
	g, err := alice.CreateGroup(ctx, "kept a while", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	conv := g.Conv
	// Old messages, sent before the retention: one with a file, a thread
	// root with a reply, a mention of bob, an edit and a reaction.
	file, err := alice.UploadBytes(ctx, "text/plain", "old.txt", []byte("old file"))
	if err != nil {
		t.Fatal(err)
	}
	old1, err := alice.Send(ctx, conv, client.NewClientID(), map[string]any{"text": "ancient one", "attachments": []string{file}})
	if err != nil {
		t.Fatal(err)
	}
	old2, err := alice.SendWith(ctx, conv, client.NewClientID(), text("ancient two for bob"), client.SendOptions{Mentions: []string{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := carol.SendInThread(ctx, conv, old2.Seq, text("ancient reply"))
	if err != nil {
		t.Fatal(err)
	}
	edit, err := alice.SendKind(ctx, conv, client.NewClientID(), protocol.KindEdit, old1.Seq, text("ancient one, edited"))
	if err != nil {
		t.Fatal(err)
	}
	react, err := carol.SendKind(ctx, conv, client.NewClientID(), protocol.KindReaction, old1.Seq, map[string]any{"emoji": "👍"})
	if err != nil {
		t.Fatal(err)
	}
	old := []uint64{old1.Seq, old2.Seq, reply.Seq, edit.Seq, react.Seq}
	// A message sent after them, and before the retention: it stays.
	recent, err := alice.Send(ctx, conv, client.NewClientID(), text("recent news"))
	if err != nil {
		t.Fatal(err)
	}
	waitSearch(t, bob, "ancient", client.SearchOptions{Conv: conv}, reply.Seq, old2.Seq, old1.Seq)
	waitSearch(t, bob, "news", client.SearchOptions{Conv: conv}, recent.Seq)

	if _, err := alice.SetRetention(ctx, conv, 30); err != nil {
		t.Fatal(err)
	}
	fresh, err := alice.SendWith(ctx, conv, client.NewClientID(), text("fresh, for bob"), client.SendOptions{Mentions: []string{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	// Before the clock moves, the sweeper keeps everything: nothing is
	// 30 days old.
	time.Sleep(time.Second)
	if rows := raw(t, conv); !slices.Contains(rows, old1.Seq) {
		t.Fatalf("the sweeper dropped a message younger than the retention (rows %v)", rows)
	}
	// 30 days after recent was sent: everything before it is older than
	// the retention, recent and what follows are not.
	ts, err := time.Parse(time.RFC3339Nano, recent.TS)
	if err != nil {
		t.Fatal(err)
	}
	later := ts.Add(30 * 24 * time.Hour)
	clock.Store(&later)

	eventually(t, "the store drops the rows older than the retention", func() error {
		rows := raw(t, conv)
		for _, seq := range old {
			if slices.Contains(rows, seq) {
				return fmt.Errorf("store still holds seq %d (rows %v)", seq, rows)
			}
		}
		if !slices.Contains(rows, recent.Seq) || !slices.Contains(rows, fresh.Seq) {
			return fmt.Errorf("store lacks the messages within the retention (rows %v)", rows)
		}
		return nil
	})
	nc, err := nats.Connect(e.app.NATS().OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	chat, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range old {
		if _, err := chat.GetMsg(ctx, seq); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("CHAT still holds seq %d: %v", seq, err)
		}
	}
	for _, seq := range []uint64{recent.Seq, fresh.Seq} {
		if _, err := chat.GetMsg(ctx, seq); err != nil {
			t.Fatalf("CHAT lost seq %d, within the retention: %v", seq, err)
		}
	}
	if got, _ := searchSeqs(t, bob, "ancient", client.SearchOptions{Conv: conv}); len(got) > 0 {
		t.Fatalf("search still finds %v", got)
	}
	waitSearch(t, bob, "news", client.SearchOptions{Conv: conv}, recent.Seq)
	if _, err := os.Stat(filepath.Join(files, file)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old message's attachment %s: %v", file, err)
	}

	all, err := bob.Sync(ctx, conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	// recent, the retention_changed event, fresh.
	if seqs := seqsOf(all.Messages); len(seqs) != 3 || seqs[0] != recent.Seq || seqs[2] != fresh.Seq {
		t.Fatalf("sync from 0 = %v, want %d, the retention event, %d", seqs, recent.Seq, fresh.Seq)
	}
	if all.Messages[0].Prev != 0 {
		t.Fatalf("the first item left has prev %d, want 0", all.Messages[0].Prev)
	}
	hist, err := bob.History(ctx, conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if seqs := seqsOf(hist.Messages); !slices.Equal(seqs, seqsOf(all.Messages)) {
		t.Fatalf("history = %v, sync %v", seqs, seqsOf(all.Messages))
	}
	if _, err := bob.ThreadAfter(ctx, conv, old2.Seq, 0, 10); err == nil {
		t.Fatal("the dropped thread root's thread still answers")
	}
	convs, err := bob.Conversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(convs, func(c *protocol.Conversation) bool { return c.Conv == conv })
	if i < 0 {
		t.Fatal("conversation not listed")
	}
	if c := convs[i]; c.Unread != 2 || c.MentionCount != 1 || c.Last == nil || c.Last.Seq != fresh.Seq {
		t.Fatalf("bob's conversation: unread %d mentions %d last %+v; want 2 (recent, fresh), 1 (fresh) and the fresh message", c.Unread, c.MentionCount, c.Last)
	}
}

func seqsOf(ms []*protocol.Message) []uint64 {
	out := make([]uint64, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}
