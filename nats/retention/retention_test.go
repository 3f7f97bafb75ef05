package retention_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/retention"
	"github.com/natter-chat/natter/nats/schema"
)

// env is a fresh schema with a hot window of window on an embedded server.
type env struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cons   jetstream.Consumer // the history consumer
}

func newEnv(t *testing.T, window time.Duration) *env {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	if err := schema.Ensure(ctx, js, schema.Config{HotWindow: window}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, schema.StreamChat, schema.ConsumerHistory)
	if err != nil {
		t.Fatal(err)
	}
	return &env{js: js, stream: st, cons: cons}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// publish stores n messages of conv, each followed by a membership event
// (which the history writer does not copy), and returns the messages' seqs.
func (e *env) publish(t *testing.T, conv string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		ack, err := e.js.Publish(ctxT(t), schema.Msg(conv), fmt.Appendf(nil, `{"i":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
		if _, err := e.js.Publish(ctxT(t), schema.Member(conv), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	return seqs
}

// store acks the next n messages on the history consumer, as the history
// writer does once its store has them.
func (e *env) store(t *testing.T, n int) {
	t.Helper()
	batch, err := e.cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second), jetstream.FetchPriorityGroup(schema.PriorityGroupHistory))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		got++
	}
	if got != n {
		t.Fatalf("fetched %d of %d: %v", got, n, batch.Error())
	}
}

func (e *env) first(t *testing.T) uint64 {
	t.Helper()
	info, err := e.stream.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.FirstSeq
}

// later is a clock an hour ahead: every stored message is older than a
// window shorter than that.
func later() time.Time { return time.Now().Add(time.Hour) }

// Nothing leaves the stream before the history store has it, however old
// it is; what the store has leaves once it is older than the window.
func TestTrimOnlyWhatTheStoreHas(t *testing.T) {
	e := newEnv(t, time.Minute)
	seqs := e.publish(t, "c1", 10)
	tr := retention.New(retention.Config{Now: later}, e.js)

	st, err := tr.Trim(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Purged != 0 || e.first(t) != 1 {
		t.Fatalf("purged %d with nothing stored; first seq %d", st.Purged, e.first(t))
	}
	if st.Held != 20 || st.HistoryLag < 59*time.Minute || st.Window != time.Minute {
		t.Fatalf("state with nothing stored = %+v", st)
	}

	e.store(t, 4)
	st, err = tr.Trim(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	// Messages 0..3 and the events between them go; message 4 stays.
	if got := e.first(t); got != seqs[3]+1 || st.FirstSeq != got || st.Stored != seqs[3] {
		t.Fatalf("first seq %d after storing 4 (want %d); state %+v", got, seqs[3]+1, st)
	}
	if st.Held != 20-seqs[3] || st.HistoryLag < 59*time.Minute {
		t.Fatalf("state after storing 4 = %+v", st)
	}

	e.store(t, 6)
	st, err = tr.Trim(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	// The event after the last message waits for a later message's ack.
	if got := e.first(t); got != seqs[9]+1 || st.Held != 1 || st.HistoryLag != 0 {
		t.Fatalf("first seq %d after storing all (want %d); state %+v", got, seqs[9]+1, st)
	}
	if s := tr.Stats(); s.Purged != seqs[9] || s.Errors != 0 || s.Last != st {
		t.Fatalf("stats = %+v", s)
	}
	// Purging by sequence is idempotent: another pass, or another node's
	// trimmer, changes nothing.
	if st, err = tr.Trim(ctxT(t)); err != nil || st.Purged != 0 || e.first(t) != seqs[9]+1 {
		t.Fatalf("second pass: %+v, %v", st, err)
	}
}

// What the store has stays for the hot window, read from the stream's
// metadata rather than the trimmer's own fallback.
func TestTrimKeepsTheWindow(t *testing.T) {
	e := newEnv(t, time.Hour)
	old := e.publish(t, "c1", 3)
	e.store(t, 3)
	tr := retention.New(retention.Config{Window: time.Nanosecond}, e.js)
	st, err := tr.Trim(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Purged != 0 || st.Window != time.Hour || e.first(t) != old[0] {
		t.Fatalf("young messages trimmed: %+v", st)
	}

	// With a short window, the old ones go once they are older than it,
	// and the young ones stay although the store has them too.
	e = newEnv(t, 300*time.Millisecond)
	old = e.publish(t, "c1", 3)
	time.Sleep(500 * time.Millisecond)
	young := e.publish(t, "c1", 3)
	e.store(t, 6)
	tr = retention.New(retention.Config{}, e.js)
	if st, err = tr.Trim(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := e.first(t); got != young[0] || st.Held != 0 || st.Purged != young[0]-old[0] {
		t.Fatalf("first seq %d, want %d (the first young one); state %+v", got, young[0], st)
	}
}

// Run trims on its interval and returns when ctx ends.
func TestRun(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	e := newEnv(t, 200*time.Millisecond)
	seqs := e.publish(t, "c1", 5)
	e.store(t, 5)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	tr := retention.New(retention.Config{Interval: time.Hour}, e.js)
	go func() { done <- tr.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.first(t) != seqs[4]+1 {
		if time.Now().After(deadline) {
			t.Fatalf("first seq still %d", e.first(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// index acks the next n messages on the search consumer without acking
// the last one's successors, as the indexer does once the index has them;
// n == 0 only takes one message and leaves it unacked (an indexer that
// read the consumer and has indexed nothing yet).
func (e *env) index(t *testing.T, n int) {
	t.Helper()
	cons, err := e.js.Consumer(ctxT(t), schema.StreamChat, schema.ConsumerSearch)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(max(n, 1), jetstream.FetchMaxWait(5*time.Second), jetstream.FetchPriorityGroup(schema.PriorityGroupSearch))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if n == 0 {
			continue
		}
		if err := m.DoubleAck(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}

// Once an indexer reads the search consumer, nothing leaves the stream
// before the index has it either, however old it is and although the
// history store has it; a search consumer nobody reads (search off) holds
// nothing back.
func TestTrimWaitsForTheSearchIndex(t *testing.T) {
	e := newEnv(t, time.Minute)
	seqs := e.publish(t, "c1", 10)
	e.store(t, 10)
	e.index(t, 0) // an indexer took the first message, not indexed yet
	tr := retention.New(retention.Config{Now: later}, e.js)
	st, err := tr.Trim(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Purged != 0 || e.first(t) != 1 || !st.Search || st.Indexed != 0 || st.Stored != seqs[9] || st.Held == 0 {
		t.Fatalf("purged before the index had anything: first seq %d; state %+v", e.first(t), st)
	}

	e = newEnv(t, time.Minute)
	seqs = e.publish(t, "c1", 10)
	e.store(t, 10)
	e.index(t, 4)
	tr = retention.New(retention.Config{Now: later}, e.js)
	if st, err = tr.Trim(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := e.first(t); got != seqs[3]+1 || st.Indexed != seqs[3] || st.Held != 20-seqs[3] {
		t.Fatalf("first seq %d with 4 indexed and all stored (want %d); state %+v", got, seqs[3]+1, st)
	}

	// Search off: the untouched search consumer holds nothing.
	e = newEnv(t, time.Minute)
	seqs = e.publish(t, "c1", 10)
	e.store(t, 10)
	tr = retention.New(retention.Config{Now: later}, e.js)
	if st, err = tr.Trim(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := e.first(t); got != seqs[9]+1 || st.Search {
		t.Fatalf("first seq %d with search off (want %d); state %+v", got, seqs[9]+1, st)
	}
}
