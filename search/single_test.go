package search_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/search"
	"github.com/natter-chat/natter/search/bleveindex"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bleve opens an embedded index in a new directory.
func bleve(t *testing.T) (search.Index, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "search")
	idx, err := bleveindex.New(bleveindex.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	return idx, dir
}

func say(t *testing.T, js jetstream.JetStream, conv string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		body, _ := json.Marshal(map[string]string{"text": fmt.Sprint("word", i)})
		data, _ := json.Marshal(protocol.Envelope{Sender: "u1", ClientID: fmt.Sprint(conv, i), Kind: protocol.KindMessage, Body: body})
		ack, err := js.Publish(ctxT(t), schema.Msg(conv), data)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// has reports how many of seqs of conv idx holds.
func has(t *testing.T, idx search.Index, conv string, seqs []uint64) int {
	t.Helper()
	n := 0
	for _, s := range seqs {
		if _, err := idx.Get(ctxT(t), search.Key{Conv: conv, Seq: s}); err == nil {
			n++
		} else if !errors.Is(err, search.ErrNotFound) {
			t.Fatal(err)
		}
	}
	return n
}

func waitHas(t *testing.T, idx search.Index, conv string, seqs []uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for has(t, idx, conv, seqs) != len(seqs) {
		if time.Now().After(deadline) {
			t.Fatalf("index holds %d of %d messages of %s", has(t, idx, conv, seqs), len(seqs), conv)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, ix *search.Indexer) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- ix.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *running) stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err
	return err
}

// Without a lease (what natter indexer did on an embedded index), two
// indexers on two directories take turns on the one search consumer: what
// the second indexed while it held the pin is missing from the first's
// index for good, and the other way round.
func TestTwoEmbeddedIndexersSplitTheMessages(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctxT(t), js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	a, _ := bleve(t)
	b, _ := bleve(t)
	first := say(t, js, "c1", 5)
	ra := start(t, search.NewIndexer(search.IndexerConfig{}, js, a))
	waitHas(t, a, "c1", first)
	start(t, search.NewIndexer(search.IndexerConfig{}, js, b))
	// a stops (a restart, a long pause): b takes the pin.
	if err := ra.stop(); err != nil {
		t.Fatal(err)
	}
	second := say(t, js, "c1", 5)
	waitHas(t, b, "c1", second)
	if n := has(t, a, "c1", second); n != 0 {
		t.Fatalf("a holds %d of the messages b indexed", n)
	}
	if n := has(t, b, "c1", first); n != 0 {
		t.Fatalf("b holds %d of the messages a indexed", n)
	}
}

// With SingleIndexer (natter serve and natter indexer on an embedded
// index), a second indexer on another directory fails at Claim and Run
// with ErrIndexerRunning while the first runs; once the first stopped
// (releasing the lease) it may start; one restarted on the same directory
// takes the lease over at once.
func TestOneEmbeddedIndexerPerCluster(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctxT(t), js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	a, dirA := bleve(t)
	b, dirB := bleve(t)
	indexer := func(idx search.Index, dir string) *search.Indexer {
		return search.NewIndexer(search.IndexerConfig{SingleIndexer: search.IndexName(dir), LeaseTTL: 2 * time.Second}, js, idx)
	}
	ixA := indexer(a, dirA)
	if err := ixA.Claim(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ra := start(t, ixA)
	seqs := say(t, js, "c1", 5)
	waitHas(t, a, "c1", seqs)

	if err := indexer(b, dirB).Claim(ctxT(t)); !errors.Is(err, search.ErrIndexerRunning) {
		t.Fatalf("second indexer Claim = %v, want ErrIndexerRunning", err)
	}
	rb := start(t, indexer(b, dirB))
	select {
	case err := <-rb.done:
		rb.done <- err
		if !errors.Is(err, search.ErrIndexerRunning) {
			t.Fatalf("second indexer Run = %v, want ErrIndexerRunning", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second indexer runs beside the first")
	}
	time.Sleep(3 * time.Second) // past the TTL: the first renews it
	if err := indexer(b, dirB).Claim(ctxT(t)); !errors.Is(err, search.ErrIndexerRunning) {
		t.Fatalf("lease not kept alive by a running indexer: Claim = %v", err)
	}
	more := say(t, js, "c1", 3)
	waitHas(t, a, "c1", more)
	if n := has(t, b, "c1", append(seqs, more...)); n != 0 {
		t.Fatalf("the refused indexer indexed %d messages", n)
	}

	// The same directory, restarted: takes it over.
	if err := indexer(a, dirA).Claim(ctxT(t)); err != nil {
		t.Fatalf("same index takes over: %v", err)
	}
	select {
	case err := <-ra.done:
		ra.done <- err
		if err == nil {
			t.Fatal("the indexer whose lease was taken over: Run = nil, want lease lost")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the indexer whose lease was taken over still runs")
	}
}
