package schema_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// drainHistory acknowledges everything the history consumer of every
// message stream has: what the history writer does.
func drainHistory(t *testing.T, ctx context.Context, js jetstream.JetStream) {
	t.Helper()
	l, err := schema.ReadLayout(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range l.ChatStreams() {
		cons, err := js.Consumer(ctx, name, schema.ConsumerHistory)
		if err != nil {
			t.Fatal(err)
		}
		for {
			batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second), jetstream.FetchPriorityGroup(schema.PriorityGroupHistory))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m := range batch.Messages() {
				n++
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n == 0 {
				break
			}
		}
	}
}

// 1 → 4 → 1: each move aborts while the history writer has not stored
// everything (and lifts the fence), then makes the new streams start
// above every old seq, so each conversation's seqs only grow; publishes
// have no stream in between; the old streams are gone.
func TestRepartition(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	cfg := schema.Config{HotWindow: time.Hour, Duplicates: 5 * time.Minute}
	if err := schema.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	last := map[string]uint64{}
	publish := func(round int) {
		t.Helper()
		for i := range 20 {
			conv := fmt.Sprintf("c%d", i)
			ack, err := js.Publish(ctx, schema.Msg(conv), []byte(`{}`), jetstream.WithMsgID(fmt.Sprintf("%s-%d", conv, round)))
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if ack.Sequence <= last[conv] {
				t.Fatalf("%s: seq %d after %d", conv, ack.Sequence, last[conv])
			}
			last[conv] = ack.Sequence
		}
	}
	publish(0)
	for _, to := range []int{4, 1} {
		before, err := schema.ReadLayout(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		_, err = schema.Repartition(ctx, js, to, schema.RepartitionOptions{Drain: time.Second})
		if !errors.Is(err, schema.ErrRepartitionAborted) {
			t.Fatalf("to %d with the history consumer behind: %v", to, err)
		}
		publish(10 + to) // the fence is lifted
		drainHistory(t, ctx, js)
		var steps []string
		res, err := schema.Repartition(ctx, js, to, schema.RepartitionOptions{Drain: 10 * time.Second,
			Progress: func(s string) {
				steps = append(steps, s)
				if len(steps) == 2 { // fenced, draining: publishes have no stream
					_, err := js.Publish(ctx, schema.Msg("c1"), []byte(`{}`), jetstream.WithRetryAttempts(0))
					if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrNoStreamResponse) {
						t.Errorf("publish while fenced: %v", err)
					}
				}
			}})
		if err != nil {
			t.Fatalf("to %d: %v", to, err)
		}
		if len(steps) != 4 {
			t.Fatalf("steps %q", steps)
		}
		var max uint64
		for _, s := range last {
			max = maxU(max, s)
		}
		if res.FirstSeq != max+1 || res.From != max1(before.Streams) || res.To != to {
			t.Fatalf("result %+v, last seq %d", res, max)
		}
		// Skipped: pushnotify's, the events writer's, the indexer's, the
		// fan-out's consumers nobody consumes here.
		if len(res.Skipped) == 0 {
			t.Fatal("no consumer reported skipped")
		}
		after, err := schema.ReadLayout(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		if max1(after.Streams) != to {
			t.Fatalf("layout after the move to %d: %+v", to, after)
		}
		// The old streams are retired: fenced, without consumers, kept
		// for the de-dup window, then deleted.
		retired, err := schema.RetiredStreams(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range retired {
			names = append(names, r.Name)
			if r.Until.Sub(r.At) != 5*time.Minute {
				t.Fatalf("%s retired %v until %v", r.Name, r.At, r.Until)
			}
			st, err := js.Stream(ctx, r.Name)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(st.CachedInfo().Config.Subjects); n != 1 || st.CachedInfo().State.Consumers != 0 {
				t.Fatalf("retired %s: subjects %v, %d consumers", r.Name, st.CachedInfo().Config.Subjects, st.CachedInfo().State.Consumers)
			}
		}
		beside, err := schema.RetiredBeside(ctx, js, after)
		if err != nil || len(beside) != len(retired) {
			t.Fatalf("retired beside %+v: %+v, %v; all: %+v", after, beside, err, retired)
		}
		slices.Sort(names)
		if want := slices.Sorted(slices.Values(before.ChatStreams())); !slices.Equal(names, want) {
			t.Fatalf("retired %v, want %v", names, want)
		}
		for conv := range last {
			holders := 0
			for _, r := range retired {
				if r.Holds(conv) {
					holders++
					if r.Name != before.StreamOf(conv) {
						t.Fatalf("%s held by retired %s, was in %s", conv, r.Name, before.StreamOf(conv))
					}
				}
			}
			if holders != 1 {
				t.Fatalf("%s held by %d retired streams", conv, holders)
			}
		}
		if to == 1 && !slices.Equal(res.EarlyDeleted, []string{schema.StreamChat}) {
			t.Fatalf("early deleted %v, want CHAT (retired by the move to 4)", res.EarlyDeleted)
		}
		if gone, err := schema.DeleteRetired(ctx, js, time.Now()); err != nil || len(gone) != 0 {
			t.Fatalf("deleted %v within the window: %v", gone, err)
		}
		// The operator's ensure (same settings, no N) adopts the new
		// layout.
		if err := schema.Ensure(ctx, js, cfg); err != nil {
			t.Fatalf("ensure after the move: %v", err)
		}
		if l, err := schema.ReadLayout(ctx, js); err != nil || max1(l.Streams) != to {
			t.Fatalf("layout after ensure %+v, %v", l, err)
		}
		for _, name := range after.ChatStreams() {
			st, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if st.CachedInfo().Config.Replicas != 1 || schema.DedupeWindowOf(st.CachedInfo().Config) != 5*time.Minute {
				t.Fatalf("%s made unlike the old: %+v", name, st.CachedInfo().Config)
			}
			for _, cc := range schema.Consumers(after, name) {
				if _, err := st.Consumer(ctx, cc.Durable); err != nil {
					t.Fatalf("%s/%s: %v", name, cc.Durable, err)
				}
			}
		}
		if err := s.SetStreams(after.Streams); err != nil { // what natter nats nodes do
			t.Fatal(err)
		}
		publish(20 + to)
		for conv, seq := range last {
			if seq < res.FirstSeq {
				t.Fatalf("%s: seq %d below the new first seq %d", conv, seq, res.FirstSeq)
			}
			if got := after.StreamOf(conv); got != func() string {
				ack, _ := js.Publish(ctx, schema.Msg(conv), []byte(`{}`))
				last[conv] = ack.Sequence
				return ack.Stream
			}() {
				t.Fatalf("%s not stored in %s", conv, got)
			}
		}
		if _, err := schema.Repartition(ctx, js, to, schema.RepartitionOptions{}); err != nil {
			t.Fatalf("again to %d: %v", to, err)
		}
	}
	drainHistory(t, ctx, js)
	if _, err := schema.Repartition(ctx, js, 3, schema.RepartitionOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := schema.Repartition(ctx, js, 2, schema.RepartitionOptions{}); err == nil {
		t.Fatal("3 to 2 streams in one move")
	}
	// Past the window the retired streams go: CHAT_3 of the 4, and CHAT
	// of the 1 (CHAT_0 … CHAT_2 went early, in the way of the 3).
	gone, err := schema.DeleteRetired(ctx, js, time.Now().Add(6*time.Minute))
	slices.Sort(gone)
	if err != nil || !slices.Equal(gone, []string{schema.StreamChat, schema.PartitionStream(3)}) {
		t.Fatalf("deleted %v: %v", gone, err)
	}
	if l, err := schema.ReadLayout(ctx, js); err != nil || l.Streams != 3 {
		t.Fatalf("layout %+v, %v", l, err)
	}
}

func maxU(a, b uint64) uint64 { return max(a, b) }

func max1(n int) int { return max(n, 1) }
