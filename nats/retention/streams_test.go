package retention_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/retention"
	"github.com/natter-chat/natter/nats/schema"
)

// With partition streams each is trimmed on its own: below its own history
// consumer's ack floor, so a partition whose store lags keeps its messages
// while another's go.
func TestTrimPartitionStreams(t *testing.T) {
	const n = 2
	srv := natstest.StartStreams(t, n)
	_, js := natstest.Connect(t, srv)
	ctx := ctxT(t)
	if err := schema.Ensure(ctx, js, schema.Config{HotWindow: time.Minute, Streams: n}); err != nil {
		t.Fatal(err)
	}
	l, err := schema.ReadLayout(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	// One conversation in each stream, 5 messages each.
	convs := make([]string, n)
	for i, have := 0, 0; have < n; i++ {
		c := fmt.Sprintf("c%d", i)
		if p := l.Partition(c); convs[p] == "" {
			convs[p], have = c, have+1
		}
	}
	for _, c := range convs {
		for i := range 5 {
			if _, err := js.Publish(ctx, schema.Msg(c), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The store has all of CHAT_0 and nothing of CHAT_1.
	cons, err := js.Consumer(ctx, schema.PartitionStream(0), schema.ConsumerHistory)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(5, jetstream.FetchMaxWait(5*time.Second), jetstream.FetchPriorityGroup(schema.PriorityGroupHistory))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, err := retention.New(retention.Config{Now: later}, js).Trim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Purged != 5 || st.Held != 5 || st.HistoryLag < 59*time.Minute {
		t.Fatalf("state %+v, want 5 purged (CHAT_0) and 5 held (CHAT_1)", st)
	}
	for p, want := range []uint64{0, 5} {
		s, err := js.Stream(ctx, schema.PartitionStream(p))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().State.Msgs; got != want {
			t.Fatalf("%s holds %d messages, want %d", schema.PartitionStream(p), got, want)
		}
	}
}
