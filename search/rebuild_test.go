package search_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/history/scyllastore/scyllatest"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/search"
)

// publish puts one envelope on conv's subject and returns its seq.
func publish(t *testing.T, js jetstream.JetStream, conv string, env protocol.Envelope) uint64 {
	t.Helper()
	if env.Sender == "" {
		env.Sender = "u1"
	}
	env.ClientID = fmt.Sprint(time.Now().UnixNano())
	data, _ := json.Marshal(env)
	ack, err := js.Publish(ctxT(t), schema.Msg(conv), data)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func text(s string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"text": s})
	return b
}

// find returns the seqs of the hits of a search in convs.
func find(t *testing.T, idx search.Index, q string, convs ...string) []uint64 {
	t.Helper()
	p, err := idx.Search(ctxT(t), search.Query{Text: q, Convs: convs})
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, h := range p.Hits {
		out = append(out, h.Seq)
	}
	return out
}

func localStore(t *testing.T) history.Store {
	s, err := localstore.New(localstore.Config{Dir: filepath.Join(t.TempDir(), "history")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRebuildFromLocalStore(t *testing.T) { testRebuild(t, localStore(t)) }

func TestRebuildFromCassandraStore(t *testing.T) {
	testRebuild(t, scyllatest.Open(t, scyllatest.Config(t, "natter_search_rebuild_", 0)))
}

// Messages the stream no longer holds (trimmed after the history store
// got them) are found after Rebuild, as the store has them: edited text,
// deleted messages left out, a disappearing one until it expires. What the stream holds
// after the search consumer's new start is applied on top by the
// indexer, and what both hold does no harm.
func testRebuild(t *testing.T, store history.Store) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	// The old messages: stored, then trimmed from the stream.
	m1 := publish(t, js, "c1", protocol.Envelope{Body: text("alpha first words")})
	m2 := publish(t, js, "c1", protocol.Envelope{Body: text("bravo gone soon")})
	publish(t, js, "c1", protocol.Envelope{Kind: protocol.KindEdit, Ref: m1, Body: text("alpha edited words")})
	publish(t, js, "c1", protocol.Envelope{Kind: protocol.KindDelete, Ref: m2, Body: json.RawMessage(`{}`)})
	m3 := publish(t, js, "c1", protocol.Envelope{Body: text("vanishing secret"),
		ExpiresAt: protocol.FormatTime(time.Now().Add(time.Hour))})
	m4 := publish(t, js, "c2", protocol.Envelope{Sender: "u2", Body: text("charlie kept long")})
	// Stored and still in the stream: both hold it.
	m5 := publish(t, js, "c2", protocol.Envelope{Sender: "u2", Body: text("echo overlap")})
	if _, err := history.Rebuild(ctx, js, store, 0); err != nil { // what the history writer does
		t.Fatal(err)
	}
	chat, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Purge(ctx, jetstream.WithPurgeSequence(m5)); err != nil {
		t.Fatal(err)
	}
	// Newer than the store: only in the stream.
	m6 := publish(t, js, "c1", protocol.Envelope{Body: text("delta fresh")})
	publish(t, js, "c1", protocol.Envelope{Kind: protocol.KindEdit, Ref: m1, Body: text("alpha final words")})
	publish(t, js, "c2", protocol.Envelope{Sender: "u2", Kind: protocol.KindEdit, Ref: m5, Body: text("echo changed")})

	idx, _ := bleve(t)
	progress := filepath.Join(t.TempDir(), "progress.json")
	st, err := search.Rebuild(ctx, search.RebuildConfig{JS: js, Index: idx, Store: store, Convs: []string{"c2", "c1", "c2"},
		Batch: 2, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st)
	if st.Convs != 2 || st.Passes != 1 || st.Indexed != 4 || st.Removed != 1 {
		t.Fatalf("stats %+v: want 2 conversations, 1 pass, 4 indexed (m1, m3 until it expires, m4, m5), 1 removed (m2 deleted)", st)
	}
	if len(st.Streams) != 1 || st.Streams[0].Floor != m5-1 {
		t.Fatalf("consumer floors %+v, want %d (below the stream's first message)", st.Streams, m5-1)
	}
	if _, err := os.Stat(progress); !os.IsNotExist(err) {
		t.Fatalf("progress file left behind: %v", err)
	}
	// The index as the store has it.
	for _, c := range []struct {
		q    string
		want []uint64
	}{{"alpha edited", []uint64{m1}}, {"first", nil}, {"bravo", nil}, {"vanishing", []uint64{m3}}, {"charlie", []uint64{m4}}, {"echo overlap", []uint64{m5}}} {
		if got := find(t, idx, c.q, "c1", "c2"); !slices.Equal(got, c.want) {
			t.Fatalf("after rebuild, %q finds %v, want %v", c.q, got, c.want)
		}
	}

	// The indexer goes on from the stream.
	ix := search.NewIndexer(search.IndexerConfig{}, js, idx)
	start(t, ix)
	deadline := time.Now().Add(30 * time.Second)
	for len(find(t, idx, "changed", "c2")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the indexer did not apply the stream after the rebuild")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		q    string
		want []uint64
	}{{"alpha final", []uint64{m1}}, {"edited", nil}, {"delta", []uint64{m6}}, {"charlie", []uint64{m4}},
		{"echo changed", []uint64{m5}}, {"overlap", nil}, {"bravo", nil}, {"vanishing", []uint64{m3}}} {
		if got := find(t, idx, c.q, "c1", "c2"); !slices.Equal(got, c.want) {
			t.Fatalf("after the indexer, %q finds %v, want %v", c.q, got, c.want)
		}
	}
}

// trimming is a store that, the first time c2 is read, stores a message
// of c1 the history writer was late with and trims the stream past it,
// as the retention trimmer may while a rebuild reads: c1 was read before
// it was stored, and the consumer no longer delivers it.
type trimming struct {
	history.Store
	t    *testing.T
	js   jetstream.JetStream
	late *protocol.Message
	done bool
}

func (s *trimming) After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	if conv == "c2" && !s.done {
		s.done = true
		if err := s.Append(ctx, []*protocol.Message{s.late}); err != nil {
			s.t.Error(err)
		}
		chat, err := s.js.Stream(ctx, schema.StreamChat)
		if err == nil {
			err = chat.Purge(ctx, jetstream.WithPurgeSequence(s.late.Seq+1))
		}
		if err != nil {
			s.t.Error(err)
		}
	}
	return s.Store.After(ctx, conv, after, limit)
}

// A rebuild during which the stream is trimmed reads again what is above
// the consumer's first floor, and finds the message it missed.
func TestRebuildReadsAgainWhatWasTrimmedMeanwhile(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	store := localStore(t)
	publish(t, js, "c1", protocol.Envelope{Body: text("alpha")})
	publish(t, js, "c2", protocol.Envelope{Body: text("bravo")})
	if _, err := history.Rebuild(ctx, js, store, 0); err != nil {
		t.Fatal(err)
	}
	late := publish(t, js, "c1", protocol.Envelope{Body: text("late words")})
	idx, _ := bleve(t)
	st, err := search.Rebuild(ctx, search.RebuildConfig{JS: js, Index: idx, Convs: []string{"c1", "c2"},
		Store: &trimming{Store: store, t: t, js: js, late: &protocol.Message{Conv: "c1", Seq: late, Sender: "u1", ClientID: "x",
			TS: protocol.FormatTime(time.Now()), Body: text("late words")}}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Passes != 2 || len(st.Streams) != 1 || st.Streams[0].Floor != late {
		t.Fatalf("stats %+v: want 2 passes and the floor at %d", st, late)
	}
	if got := find(t, idx, "late", "c1"); !slices.Equal(got, []uint64{late}) {
		t.Fatalf("the message trimmed during the rebuild: found %v", got)
	}
}

// A rebuild that stopped goes on after the last conversation it wrote,
// with the consumer where it put it; one that finds the consumer read
// since (an indexer ran) refuses.
func TestRebuildResumes(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	store := localStore(t)
	a := publish(t, js, "c1", protocol.Envelope{Body: text("alpha")})
	b := publish(t, js, "c2", protocol.Envelope{Body: text("bravo")})
	if _, err := history.Rebuild(ctx, js, store, 0); err != nil {
		t.Fatal(err)
	}
	chat, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	idx, _ := bleve(t)
	progress := filepath.Join(t.TempDir(), "progress.json")
	// What a first run that stopped after c1 left.
	if err := os.WriteFile(progress, fmt.Appendf(nil, `{"floors":[%d],"done":"c1"}`, b), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := search.Rebuild(ctx, search.RebuildConfig{JS: js, Index: idx, Store: store, Convs: []string{"c1", "c2"}, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Resumed || st.Indexed != 1 {
		t.Fatalf("stats %+v: want resumed, 1 indexed", st)
	}
	if got := find(t, idx, "alpha", "c1"); got != nil {
		t.Fatalf("a resumed rebuild read c1 again: %v", got)
	}
	if got := find(t, idx, "bravo", "c2"); !slices.Equal(got, []uint64{b}) {
		t.Fatalf("bravo: %v", got)
	}
	_ = a

	// An indexer read the consumer since: the progress no longer holds.
	if err := os.WriteFile(progress, fmt.Appendf(nil, `{"floors":[%d],"done":"c1"}`, b), 0o600); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "c1", protocol.Envelope{Body: text("charlie")})
	ix := search.NewIndexer(search.IndexerConfig{}, js, idx)
	r := start(t, ix)
	deadline := time.Now().Add(30 * time.Second)
	for ix.Indexed() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("indexer idle")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := search.Rebuild(ctx, search.RebuildConfig{JS: js, Index: idx, Store: store, Convs: []string{"c1", "c2"}, Progress: progress}); err == nil {
		t.Fatal("resumed a rebuild over a consumer an indexer read")
	}
}
