package history_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// env is an embedded JetStream with the schema and an embedded history
// store in a temporary directory.
type env struct {
	t     *testing.T
	js    jetstream.JetStream
	store *localstore.Store
	dir   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctxT(t), js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, js: js, dir: t.TempDir()}
	e.store = e.open()
	return e
}

// open opens the embedded store in e.dir, closed by the cleanup.
func (e *env) open() *localstore.Store {
	e.t.Helper()
	s, err := localstore.New(localstore.Config{Dir: e.dir, NoSync: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// env of a message of the stream; ts is fixed so that rows are the same
// however often they are read.
func envelope(sender, kind string, ref uint64, text string) protocol.Envelope {
	body, _ := json.Marshal(map[string]string{"text": text})
	return protocol.Envelope{Sender: sender, ClientID: fmt.Sprintf("%s-%s", sender, text), TS: "2026-01-02T03:04:05Z", Kind: kind, Ref: ref, Body: body}
}

// row is env as the store keeps it at (conv, seq).
func row(conv string, seq uint64, env protocol.Envelope) *protocol.Message {
	return env.Message(conv, seq, "")
}

// publish stores msg in conv's subject and returns its seq.
func (e *env) publish(conv string, msg protocol.Envelope) uint64 {
	e.t.Helper()
	data, _ := json.Marshal(msg)
	ack, err := e.js.Publish(ctxT(e.t), schema.Msg(conv), data)
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// say publishes plain messages from u1 to conv and returns their seqs.
func (e *env) say(conv string, texts ...string) []uint64 {
	e.t.Helper()
	var seqs []uint64
	for _, s := range texts {
		seqs = append(seqs, e.publish(conv, envelope("u1", protocol.KindMessage, 0, s)))
	}
	return seqs
}

// ackUpTo moves the history consumer's ack floor to seq without writing
// anything to the store: as if the store had them and lost them.
func (e *env) ackUpTo(seq uint64) {
	e.t.Helper()
	cons, err := e.js.Consumer(ctxT(e.t), schema.StreamChat, schema.ConsumerHistory)
	if err != nil {
		e.t.Fatal(err)
	}
	for e.floor() < seq {
		b, err := cons.Fetch(schema.HistoryBatch, jetstream.FetchMaxWait(time.Second), jetstream.FetchPriorityGroup(schema.PriorityGroupHistory))
		if err != nil {
			e.t.Fatal(err)
		}
		for m := range b.Messages() {
			meta, _ := m.Metadata()
			if meta.Sequence.Stream <= seq {
				if err := m.DoubleAck(ctxT(e.t)); err != nil {
					e.t.Fatal(err)
				}
			} else {
				_ = m.Nak()
			}
		}
	}
}

// floor is the history consumer's ack floor.
func (e *env) floor() uint64 {
	e.t.Helper()
	cons, err := e.js.Consumer(ctxT(e.t), schema.StreamChat, schema.ConsumerHistory)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := cons.Info(ctxT(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	return info.AckFloor.Stream
}

// waitFloor waits until the writer has acked seq.
func (e *env) waitFloor(seq uint64) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.floor() < seq {
		if time.Now().After(deadline) {
			e.t.Fatalf("ack floor %d, want %d", e.floor(), seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running is a Writer running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// run runs w until the test ends or stop is called.
func run(t *testing.T, w *history.Writer) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = w.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// stop ends Run and returns its error.
func (r *running) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// wait returns Run's error once it returns by itself, or fails the test
// after d.
func (r *running) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		t.Fatalf("Run still running after %s", d)
		return nil
	}
}

func (e *env) reader() *history.Reader {
	e.t.Helper()
	st, err := history.NewStream(ctxT(e.t), e.js)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := history.NewReader(ctxT(e.t), e.js, e.store, st)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// texts renders a page as seq:text (edited rows marked *, tombstones x).
func texts(page []*protocol.Message) []string {
	var out []string
	for _, m := range page {
		var b struct{ Text string }
		_ = json.Unmarshal(m.Body, &b)
		s := fmt.Sprintf("%d:%s", m.Seq, b.Text)
		switch {
		case m.Deleted:
			s += "x"
		case m.EditSeq != 0:
			s += "*"
		}
		out = append(out, s)
	}
	return out
}

func itoa(n uint64) string { return fmt.Sprint(n) }
