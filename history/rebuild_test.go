package history_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// Wipe the embedded store, rebuild it from the stream: it answers as
// before, and a second rebuild changes nothing.
func TestRebuild(t *testing.T) {
	e := newEnv(t)
	convs := []string{"c", "d", "e"}
	var last uint64
	for i := range 30 {
		conv := convs[i%len(convs)]
		seq := e.say(conv, itoa(uint64(i)))[0]
		if i%4 == 3 {
			seq = e.publish(conv, envelope("u1", protocol.KindEdit, seq, "edited"))
		}
		if i%7 == 6 {
			seq = e.publish(conv, envelope("u1", protocol.KindDelete, seq-1, ""))
		}
		last = seq
	}
	e.publish("c", protocol.Envelope{Sender: "u1"}) // not an envelope: skipped
	w := run(t, history.NewWriter(history.WriterConfig{}, e.js, e.store))
	e.waitFloor(last + 1)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	answers := func() map[string][]string {
		out := map[string][]string{}
		for _, conv := range convs {
			rows, _, err := e.store.After(ctxT(t), conv, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			fwd, back := pages(t, e.reader(), conv, 7)
			out[conv+" store"], out[conv+" after"], out[conv+" before"] = texts(rows), fwd, back
		}
		return out
	}
	want := answers()

	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(e.dir); err != nil {
		t.Fatal(err)
	}
	e.store = e.open()
	if rows, _, _ := e.store.After(ctxT(t), "c", 0, 10); len(rows) != 0 {
		t.Fatal("the wiped store is not empty")
	}
	for range 2 {
		st, err := history.Rebuild(ctxT(t), e.js, e.store, 8)
		if err != nil {
			t.Fatal(err)
		}
		if st.First != 1 || st.Last != last+1 || st.Read != int(last+1) || st.Skipped != 1 || st.Appended != int(last) {
			t.Fatalf("stats %+v, want first 1, last %d, read %d, 1 skipped", st, last+1, last+1)
		}
		got := answers()
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Fatalf("%s after the rebuild:\n%v\nwant\n%v", k, got[k], v)
			}
		}
	}
}

// A store that holds another stream's rows is not rebuilt over.
func TestRebuildConflict(t *testing.T) {
	e := newEnv(t)
	e.say("c", "a", "b")
	if err := e.store.Append(ctxT(t), []*protocol.Message{row("c", 2, envelope("u7", "", 0, "old"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := history.Rebuild(ctxT(t), e.js, e.store, 0); !errors.Is(err, history.ErrConflict) {
		t.Fatalf("Rebuild = %v, want ErrConflict", err)
	}
}

// flakyJS hands out consumers whose second and third fetches fail as a
// JetStream API without a responder does (a node restarting, a meta
// leader changing): what chaos saw during a rebuild.
type flakyJS struct{ jetstream.JetStream }

func (j flakyJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := j.JetStream.Stream(ctx, name)
	return flakyStream{s}, err
}

type flakyStream struct{ jetstream.Stream }

func (s flakyStream) OrderedConsumer(ctx context.Context, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	c, err := s.Stream.OrderedConsumer(ctx, cfg)
	return &flakyConsumer{Consumer: c}, err
}

type flakyConsumer struct {
	jetstream.Consumer
	fetches int
}

func (c *flakyConsumer) Fetch(batch int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	c.fetches++
	if c.fetches == 2 || c.fetches == 3 {
		return nil, nats.ErrNoResponders
	}
	return c.Consumer.Fetch(batch, opts...)
}

// A rebuild whose reads fail for a moment goes on from where it was: an
// operator's one command is not undone by a cluster hiccup.
func TestRebuildRetriesTransientErrors(t *testing.T) {
	e := newEnv(t)
	var last uint64
	for i := range 40 {
		last = e.say("c", itoa(uint64(i)))[0]
	}
	st, err := history.Rebuild(ctxT(t), flakyJS{e.js}, e.store, 8)
	if err != nil {
		t.Fatalf("Rebuild with two failed fetches: %v", err)
	}
	if st.Read != int(last) || st.Appended != int(last) {
		t.Fatalf("stats %+v; want all %d read and appended", st, last)
	}
	rows, _, err := e.store.After(ctxT(t), "c", 0, 100)
	if err != nil || len(rows) != int(last) {
		t.Fatalf("the store has %d rows, %v; want %d", len(rows), err, last)
	}
}
