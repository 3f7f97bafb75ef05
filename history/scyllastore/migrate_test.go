package scyllastore_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/natter-chat/natter/history/storetest"
	"github.com/natter-chat/natter/protocol"
)

// TestMigrateAddsReplyColumns checks migrate step 2 on a keyspace of the
// schema before replies and threads: the columns and the thread index are
// added, rows written before read with the new fields zero, and new rows
// keep them.
func TestMigrateAddsReplyColumns(t *testing.T) {
	ctx := context.Background()
	cfg := config(t, storetest.BucketSize)
	cluster := gocql.NewCluster(cfg.Hosts...)
	cluster.Timeout = 30 * time.Second
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	// The keyspace as the schema before step 2 made it, with one row
	// written then. (Dropping the new columns instead would not do:
	// Cassandra hides a re-added column's cells written before the drop,
	// and rows are written at their seq as timestamp.)
	ks := cfg.Keyspace + "."
	for _, st := range []string{
		"CREATE KEYSPACE " + cfg.Keyspace + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
		"CREATE TABLE " + ks + `messages (conv text, bucket bigint, seq bigint, sender text, client_id text, ts text,
			kind text, ref bigint, body blob, edit_body blob, edit_seq bigint, deleted boolean,
			PRIMARY KEY ((conv, bucket), seq)) WITH CLUSTERING ORDER BY (seq DESC)`,
		"CREATE TABLE " + ks + "buckets (conv text, bucket bigint, PRIMARY KEY (conv, bucket)) WITH CLUSTERING ORDER BY (bucket DESC)",
		"INSERT INTO " + ks + "buckets (conv, bucket) VALUES ('old', 0)",
		`INSERT INTO ` + ks + `messages (conv, bucket, seq, sender, client_id, ts, kind, ref, body) VALUES ('old', 0, 1, 'u1', 'c1', 't', '', 0, textAsBlob('{"text":"before"}'))`,
	} {
		if err := session.Query(st).Exec(); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	migrate(t, cfg)
	migrate(t, cfg) // again: nothing to add
	s := open(t, cfg)
	r := &protocol.Message{Conv: "old", Seq: 2, Sender: "u2", ClientID: "c2", TS: "t", Body: []byte(`{"text":"re"}`),
		ReplyTo: 1, Quote: &protocol.Quote{Seq: 1, Sender: "u1", Snippet: "before"}, Thread: 1, Mentions: []string{"u1"}}
	if err := s.Append(ctx, []*protocol.Message{r}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.After(ctx, "old", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("rows %d, want 2", len(got))
	}
	if old := got[0]; string(old.Body) != `{"text":"before"}` || old.ReplyTo != 0 || old.Quote != nil || old.DeletedBy != "" ||
		old.ThreadCount != 1 || old.ThreadLastSeq != 2 {
		t.Errorf("row written before step 2: %+v", old)
	}
	if g := got[1]; g.ReplyTo != 1 || g.Quote == nil || *g.Quote != *r.Quote || g.Thread != 1 || len(g.Mentions) != 1 {
		t.Errorf("reply: %+v", g)
	}
	thread, _, err := s.ThreadAfter(ctx, "old", 1, 0, 10)
	if err != nil || len(thread) != 1 || thread[0].Seq != 2 {
		t.Errorf("thread: %v %v", thread, err)
	}
}
