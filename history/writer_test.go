package history_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

func TestWriterCopiesStream(t *testing.T) {
	e := newEnv(t)
	seqs := e.say("c", "one", "two", "three")
	edit := e.publish("c", envelope("u1", protocol.KindEdit, seqs[1], "TWO"))
	del := e.publish("c", envelope("u1", protocol.KindDelete, seqs[2], "gone"))
	bad := e.publish("c", protocol.Envelope{Sender: "u1"}) // no client id, no body
	other := e.say("d", "elsewhere")
	run(t, history.NewWriter(history.WriterConfig{Batch: 2}, e.js, e.store))
	e.waitFloor(other[0])
	rows, more, err := e.store.After(ctxT(t), "c", 0, 100)
	if err != nil || more {
		t.Fatal(err, more)
	}
	got := texts(rows)
	want := []string{"1:one", "2:TWO*", "3:x", "4:TWO", "5:gone"}
	if !slices.Equal(got, want) {
		t.Fatalf("store has %v, want %v", got, want)
	}
	if edit != 4 || del != 5 || bad != 6 {
		t.Fatalf("seqs %d %d %d", edit, del, bad)
	}
	if rows, _, _ := e.store.After(ctxT(t), "d", 0, 10); len(rows) != 1 {
		t.Fatalf("conversation d: %v", texts(rows))
	}
}

// A seq the store holds with other content (the stream was restored from
// an old backup and hands out seqs again) stops the writer with
// ErrConflict; the same content is a no-op.
func TestWriterStopsOnConflict(t *testing.T) {
	e := newEnv(t)
	// The store already has seq 2 as the stream will have it, and seq 3
	// as another stream had it.
	same := row("c", 2, envelope("u1", protocol.KindMessage, 0, "two"))
	stale := row("c", 3, envelope("u9", protocol.KindMessage, 0, "from the old stream"))
	if err := e.store.Append(ctxT(t), []*protocol.Message{same, stale}); err != nil {
		t.Fatal(err)
	}
	e.say("c", "one", "two")
	w := run(t, history.NewWriter(history.WriterConfig{}, e.js, e.store))
	e.waitFloor(2) // the same content went through
	e.say("c", "three")
	err := w.wait(t, 20*time.Second)
	if !errors.Is(err, history.ErrConflict) {
		t.Fatalf("Run = %v, want ErrConflict", err)
	}
	rows, _, _ := e.store.After(ctxT(t), "c", 0, 10)
	if got := texts(rows); !slices.Equal(got, []string{"1:one", "2:two", "3:from the old stream"}) {
		t.Fatalf("store has %v", got)
	}
	if f := e.floor(); f != 2 {
		t.Fatalf("ack floor %d, want 2: the conflicting message must stay unacked", f)
	}
}

// flakyStreams is a JetStream whose first fails Stream lookups time out,
// as while the stream's leader is being elected.
type flakyStreams struct {
	jetstream.JetStream
	fails atomic.Int32
}

func (f *flakyStreams) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, fmt.Errorf("stream info: %w", context.DeadlineExceeded)
	}
	return f.JetStream.Stream(ctx, name)
}

// A layout read that times out (CHAT's leader being elected; CI saw
// "layout of CHAT: context deadline exceeded" stop the writer in the
// chaos leader-kill test) is retried: the writer goes on and copies the
// stream.
func TestWriterRetriesLayoutRead(t *testing.T) {
	e := newEnv(t)
	seqs := e.say("c", "one", "two")
	js := &flakyStreams{JetStream: e.js}
	js.fails.Store(3)
	w := run(t, history.NewWriter(history.WriterConfig{MaxBackoff: 50 * time.Millisecond}, js, e.store))
	e.waitFloor(seqs[1])
	select {
	case <-w.done:
		t.Fatalf("writer stopped: %v", w.err)
	default:
	}
	if js.fails.Load() >= 0 {
		t.Fatal("the layout read never failed: the test tests nothing")
	}
}
