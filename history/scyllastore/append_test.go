package scyllastore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/history/scyllastore"
	"github.com/natter-chat/natter/history/storetest"
	"github.com/natter-chat/natter/protocol"
)

// rawSession is a plain CQL session on cfg's keyspace ("" for none), for
// what a test must see or do beside the Store.
func rawSession(t testing.TB, cfg scyllastore.Config, keyspace string) *gocql.Session {
	t.Helper()
	cluster := gocql.NewCluster(cfg.Hosts...)
	cluster.Keyspace = keyspace
	cluster.Timeout = 20 * time.Second
	s, err := cluster.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func plain(conv string, seq uint64, sender string) *protocol.Message {
	return &protocol.Message{
		Conv: conv, Seq: seq, Sender: sender, ClientID: fmt.Sprintf("c%d", seq),
		TS: fmt.Sprintf("2026-01-02T03:04:05.%09dZ", seq), Body: []byte(fmt.Sprintf(`{"text":"m%d"}`, seq)),
	}
}

// localCounts returns how many local reads and writes Cassandra has
// served on keyspace.table (its system_views latency tables).
func localCounts(t testing.TB, raw *gocql.Session, keyspace, table string) (reads, writes int64) {
	t.Helper()
	for _, v := range []struct {
		view string
		n    *int64
	}{{"local_read_latency", &reads}, {"local_write_latency", &writes}} {
		err := raw.Query("SELECT count FROM system_views."+v.view+" WHERE keyspace_name = ? AND table_name = ?", keyspace, table).Scan(v.n)
		if err != nil {
			t.Fatalf("%s of %s.%s: %v", v.view, keyspace, table, err)
		}
	}
	return reads, writes
}

// TestAppendReadsNoRows checks what a writer keeping up costs the
// database: appending new batches reads no row of messages, and writes
// each bucket of the buckets table once, not once per batch. It reads
// Cassandra's own per-table counters (system_views, Cassandra 4.1+), so it
// skips on ScyllaDB, which has none.
func TestAppendReadsNoRows(t *testing.T) {
	cfg := config(t, 100)
	migrate(t, cfg)
	s := open(t, cfg)
	raw := rawSession(t, cfg, "")
	var probe int64
	if err := raw.Query("SELECT count FROM system_views.local_read_latency LIMIT 1").Scan(&probe); err != nil {
		t.Skipf("no system_views.local_read_latency on this database (ScyllaDB?): %v", err)
	}
	msgsReads0, _ := localCounts(t, raw, cfg.Keyspace, "messages")
	_, bucketWrites0 := localCounts(t, raw, cfg.Keyspace, "buckets")

	// 20 batches of 50 over 10 conversations: each conversation has rows
	// in all 10 buckets of seqs 1-1000, and each bucket is in 2 batches.
	buckets := map[string]bool{}
	ctx := context.Background()
	var batches [][]*protocol.Message
	for b := range 20 {
		var batch []*protocol.Message
		for i := range 50 {
			seq := uint64(b*50 + i + 1)
			conv := fmt.Sprintf("c%d", seq%10)
			batch = append(batch, plain(conv, seq, "u1"))
			buckets[fmt.Sprint(conv, seq/100)] = true
		}
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, batch)
	}
	msgsReads, _ := localCounts(t, raw, cfg.Keyspace, "messages")
	_, bucketWrites := localCounts(t, raw, cfg.Keyspace, "buckets")
	if n := msgsReads - msgsReads0; n != 0 {
		t.Errorf("appending 1,000 new rows read messages %d times, want 0", n)
	}
	if n := bucketWrites - bucketWrites0; n != int64(len(buckets)) {
		t.Errorf("appending rows in %d buckets wrote the buckets table %d times, want %d", len(buckets), n, len(buckets))
	}
	for c := range 10 {
		if n, err := s.Count(ctx, fmt.Sprintf("c%d", c), 0); err != nil || n != 100 {
			t.Fatalf("Count(c%d) = %d, %v; want 100", c, n, err)
		}
	}

	// A batch appended again is looked up (so the counters do count).
	if err := s.Append(ctx, batches[7]); err != nil {
		t.Fatal(err)
	}
	if again, _ := localCounts(t, raw, cfg.Keyspace, "messages"); again == msgsReads {
		t.Errorf("re-appending a stored batch read no rows: it must look them up for ErrConflict")
	}
}

// TestMigrateCompletesMark upgrades a keyspace written before the seq
// mark existed: until Migrate has run, every row is looked up; Migrate
// raises the mark above the rows already stored, so a row stored by the
// old version is still caught offered again with other content.
func TestMigrateCompletesMark(t *testing.T) {
	ctx := context.Background()
	cfg := config(t, storetest.BucketSize)
	migrate(t, cfg)
	raw := rawSession(t, cfg, cfg.Keyspace)
	// As the old version left it: no mark, and a row it wrote.
	old := plain("c", 500, "u9")
	for _, q := range []struct {
		cql  string
		args []any
	}{
		{"DELETE FROM settings WHERE name = 'high_seq_complete'", nil},
		{"INSERT INTO buckets (conv, bucket) VALUES (?, ?)", []any{"c", int64(500 / storetest.BucketSize)}},
		{"INSERT INTO messages (conv, bucket, seq, sender, client_id, ts, kind, ref, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP 500",
			[]any{"c", int64(500 / storetest.BucketSize), int64(500), old.Sender, old.ClientID, old.TS, "", int64(0), []byte(old.Body)}},
	} {
		if err := raw.Query(q.cql, q.args...).Exec(); err != nil {
			t.Fatalf("%s: %v", q.cql, err)
		}
	}
	s := open(t, cfg)
	if err := s.Append(ctx, []*protocol.Message{plain("c", 10, "u1"), plain("c", 12, "u1")}); err != nil {
		t.Fatal(err)
	}
	other := plain("c", 500, "u1")
	if err := s.Append(ctx, []*protocol.Message{other, plain("c", 501, "u1")}); !errors.Is(err, history.ErrConflict) {
		t.Fatalf("before Migrate: Append of a stored seq with other content = %v, want ErrConflict", err)
	}
	migrate(t, cfg)
	for _, st := range []*scyllastore.Store{s, open(t, cfg)} {
		if err := st.Append(ctx, []*protocol.Message{other, plain("c", 501, "u1")}); !errors.Is(err, history.ErrConflict) {
			t.Fatalf("after Migrate: Append of a stored seq with other content = %v, want ErrConflict", err)
		}
	}
	got, _, err := s.After(ctx, "c", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Seq != 500 || got[2].Sender != "u9" {
		t.Fatalf("rows %v, want 10, 12 and 500 from u9", got)
	}
	// New rows above it still go in, and the same row again is a no-op.
	if err := s.Append(ctx, []*protocol.Message{old, plain("c", 501, "u1")}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Last(ctx, "c"); err != nil || n != 501 {
		t.Fatalf("Last = %d, %v; want 501", n, err)
	}
}

// TestAppendMatchesLocalstore appends one random history, edits, deletes
// and reactions included, in random batches (spanning buckets, in random
// order within a batch, some appended twice, some after a restart that
// empties the Store's caches) to this store and to the embedded one, and
// checks both read the same: the rule is history's, whichever store holds
// the rows.
func TestAppendMatchesLocalstore(t *testing.T) {
	ctx := context.Background()
	cfg := config(t, storetest.BucketSize)
	migrate(t, cfg)
	cs := open(t, cfg)
	ls, err := localstore.New(localstore.Config{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ls.Close() })

	rng := rand.New(rand.NewPCG(19, 6))
	convs := []string{"a", "b", "c"}
	var all []*protocol.Message
	byConv := map[string][]*protocol.Message{}
	const total = 400
	for seq := uint64(1); seq <= total; seq++ {
		conv := convs[rng.IntN(len(convs))]
		m := plain(conv, seq, []string{"u1", "u2"}[rng.IntN(2)])
		if prev := byConv[conv]; len(prev) > 0 && rng.IntN(10) < 5 {
			// An event aimed mostly at a recent row of its conversation,
			// mostly by that row's sender; now and then at a later seq.
			tg := prev[max(0, len(prev)-1-rng.IntN(min(len(prev), 12)))]
			m.Kind = []string{protocol.KindEdit, protocol.KindEdit, protocol.KindDelete, protocol.KindReaction}[rng.IntN(4)]
			m.Ref = tg.Seq
			if rng.IntN(10) < 8 {
				m.Sender = tg.Sender
			}
			if rng.IntN(20) == 0 {
				m.Ref = seq + 3
			}
			m.Body = []byte(fmt.Sprintf(`{"text":"%s %d"}`, m.Kind, seq))
		}
		all = append(all, m)
		byConv[conv] = append(byConv[conv], m)
	}

	both := func(batch []*protocol.Message) {
		t.Helper()
		if err := ls.Append(ctx, clones(batch)); err != nil {
			t.Fatalf("localstore: %v", err)
		}
		if err := cs.Append(ctx, clones(batch)); err != nil {
			t.Fatalf("scyllastore: %v", err)
		}
	}
	var done [][]*protocol.Message
	for rest := all; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(60))
		batch := slices.Clone(rest[:n])
		rest = rest[n:]
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		if len(done) > 0 && rng.IntN(4) == 0 {
			// Redelivered: an earlier batch with this one.
			batch = append(batch, done[rng.IntN(len(done))]...)
		}
		both(batch)
		done = append(done, batch)
		if len(done) == 5 {
			cs = open(t, cfg) // a restart: no bucket known, no mark seen
		}
	}
	for _, b := range done[:3] {
		both(b)
	}
	same(t, ls, cs, convs)

	// A conflict fails both the same way and stores nothing of its batch.
	stale := clone(all[rng.IntN(len(all))])
	stale.Body = []byte(`{"text":"from another stream"}`)
	batch := []*protocol.Message{plain("a", total+1, "u1"), stale}
	if err := ls.Append(ctx, clones(batch)); !errors.Is(err, history.ErrConflict) {
		t.Fatalf("localstore: %v, want ErrConflict", err)
	}
	if err := cs.Append(ctx, clones(batch)); !errors.Is(err, history.ErrConflict) {
		t.Fatalf("scyllastore: %v, want ErrConflict", err)
	}
	same(t, ls, cs, convs)
}

func clone(m *protocol.Message) *protocol.Message {
	c := *m
	c.Body = slices.Clone(m.Body)
	return &c
}

func clones(ms []*protocol.Message) []*protocol.Message {
	out := make([]*protocol.Message, len(ms))
	for i, m := range ms {
		out[i] = clone(m)
	}
	return out
}

// same fails unless want and got read the same for every conversation:
// whole pages both ways, Last, and Count from a few points.
func same(t *testing.T, want, got history.Store, convs []string) {
	t.Helper()
	ctx := context.Background()
	for _, conv := range convs {
		for _, dir := range []string{"after", "before"} {
			page := func(s history.Store) []*protocol.Message {
				var rows []*protocol.Message
				var err error
				if dir == "after" {
					rows, _, err = s.After(ctx, conv, 0, 1000)
				} else {
					rows, _, err = s.Before(ctx, conv, 0, 1000)
				}
				if err != nil {
					t.Fatal(err)
				}
				return rows
			}
			w, g := page(want), page(got)
			if len(w) != len(g) {
				t.Fatalf("%s %s: %d rows, want %d", conv, dir, len(g), len(w))
			}
			for i := range w {
				a, b := w[i], g[i]
				if a.Seq != b.Seq || a.Sender != b.Sender || a.ClientID != b.ClientID || a.TS != b.TS ||
					a.Kind != b.Kind || a.Ref != b.Ref || string(a.Body) != string(b.Body) ||
					a.EditSeq != b.EditSeq || a.Deleted != b.Deleted {
					t.Fatalf("%s %s row %d:\n got  %+v %s\n want %+v %s", conv, dir, i, b, b.Body, a, a.Body)
				}
			}
		}
		wl, err1 := want.Last(ctx, conv)
		gl, err2 := got.Last(ctx, conv)
		if err1 != nil || err2 != nil || wl != gl {
			t.Fatalf("Last(%s) = %d (%v), want %d (%v)", conv, gl, err2, wl, err1)
		}
		for _, after := range []uint64{0, 17, 100, 333} {
			wc, err1 := want.Count(ctx, conv, after)
			gc, err2 := got.Count(ctx, conv, after)
			if err1 != nil || err2 != nil || wc != gc {
				t.Fatalf("Count(%s, %d) = %d (%v), want %d (%v)", conv, after, gc, err2, wc, err1)
			}
		}
	}
}

// TestConflictAcrossWriters alternates two Stores on one keyspace, as two
// natter processes do when the history consumer's pin moves: a seq the
// other one stored is still caught offered again with other content, by
// either, and the same content is still a no-op.
func TestConflictAcrossWriters(t *testing.T) {
	ctx := context.Background()
	cfg := config(t, storetest.BucketSize)
	migrate(t, cfg)
	a, b := open(t, cfg), open(t, cfg)
	appendRange := func(s *scyllastore.Store, from, to uint64) {
		t.Helper()
		var batch []*protocol.Message
		for seq := from; seq <= to; seq++ {
			batch = append(batch, plain(fmt.Sprintf("c%d", seq%3), seq, "u1"))
		}
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	conflicts := func(name string, s *scyllastore.Store, seq uint64) {
		t.Helper()
		stale := plain(fmt.Sprintf("c%d", seq%3), seq, "u9")
		if err := s.Append(ctx, []*protocol.Message{stale, plain("c0", 301, "u1")}); !errors.Is(err, history.ErrConflict) {
			t.Errorf("%s: Append = %v, want ErrConflict", name, err)
		}
	}
	appendRange(a, 1, 100)
	appendRange(b, 101, 200) // b took over: in what a reserved
	conflicts("a, a seq b stored in a's reservation", a, 150)
	appendRange(a, 201, 300) // a is back
	conflicts("b, a seq a stored", b, 250)
	conflicts("a, its own seq", a, 50)
	conflicts("b, its own seq", b, 120)
	appendRange(b, 140, 160) // the same content: a no-op
	for c := range 3 {
		conv := fmt.Sprintf("c%d", c)
		got, _, err := a.After(ctx, conv, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 100 {
			t.Fatalf("%s: %d rows, want 100", conv, len(got))
		}
		for _, m := range got {
			if m.Sender != "u1" || m.Seq > 300 {
				t.Fatalf("%s: row %+v", conv, m)
			}
		}
	}
}

// TestAppendAfterKeyspaceRestore restores the keyspace under a running
// Store, as restoring a backup does (older rows, an older seq mark): the
// buckets the Store had registered are gone, and rows appended next must
// still be where pages look.
func TestAppendAfterKeyspaceRestore(t *testing.T) {
	ctx := context.Background()
	cfg := config(t, storetest.BucketSize)
	migrate(t, cfg)
	s := open(t, cfg)
	if err := s.Append(ctx, []*protocol.Message{plain("c", 1, "u1"), plain("c", 2, "u1")}); err != nil {
		t.Fatal(err)
	}
	// The backup was taken before any row: empty tables, no mark above 0.
	raw := rawSession(t, cfg, cfg.Keyspace)
	for _, q := range []string{"TRUNCATE messages", "TRUNCATE buckets"} {
		if err := raw.Query(q).Exec(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var mark string
	if err := raw.Query("SELECT value FROM settings WHERE name = 'high_seq'").Scan(&mark); err != nil {
		t.Fatal(err)
	}
	if applied, err := raw.Query("UPDATE settings SET value = '0' WHERE name = 'high_seq' IF value = ?", mark).
		SerialConsistency(gocql.Serial).ScanCAS(); err != nil || !applied {
		t.Fatalf("set the mark back: applied %v, %v", applied, err)
	}
	// The stream, restored with it, hands out 1 and 2 again, then 3.
	if err := s.Append(ctx, []*protocol.Message{plain("c", 1, "u1"), plain("c", 2, "u1"), plain("c", 3, "u1")}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.After(ctx, "c", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("after the restore: rows %v, want 1, 2, 3", got)
	}
}
