package fanout_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/fanout"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// logBuf is a worker's log, safe to read while it writes.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pins are the consumers whose pin the log says the worker took.
func (b *logBuf) pins() map[string]bool {
	out := map[string]bool{}
	for line := range strings.Lines(b.String()) {
		var rec struct{ Msg, Consumer string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "pinned worker holds the pin" {
			out[rec.Consumer] = true
		}
	}
	return out
}

func logged(b *logBuf) fanout.Config {
	return fanout.Config{Logger: slog.New(slog.NewJSONHandler(b, nil))}
}

// groupsInEvery creates groups until every partition of the stream has
// per of them, each of two users of its own, and returns them.
func groupsInEvery(t *testing.T, h *harness, per int) []string {
	t.Helper()
	l, err := schema.ReadLayout(t.Context(), h.js)
	if err != nil {
		t.Fatal(err)
	}
	if l.Partitions < 2 {
		t.Fatalf("layout %+v: want partitions", l)
	}
	count := make([]int, l.Partitions)
	var out []string
	for i := 0; len(out) < per*l.Partitions; i++ {
		if i > 50*per*l.Partitions {
			t.Fatalf("partitions %v after %d groups", count, i)
		}
		conv := group(t, h, fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i))
		if p := l.Partition(conv); count[p] < per {
			count[p]++
			out = append(out, conv)
		}
	}
	return out
}

// Two processes each running a fan-out share the partitions: each holds
// the pin of some partitions, none of the other's, and together all.
func TestPartitionsSpreadOverProcesses(t *testing.T) {
	h := newHarness(t)
	logs := []*logBuf{{}, {}}
	for _, b := range logs {
		h.worker(t, h.js, logged(b))
	}
	time.Sleep(time.Second) // both have heard of each other
	convs := groupsInEvery(t, h, 1)
	for _, conv := range convs {
		h.send(t, conv, "x", "hi", "")
	}
	n := len(convs)
	h.collect(t, schema.EventMessage, 2*n) // each group's two members
	a, b := logs[0].pins(), logs[1].pins()
	if len(a) == 0 || len(b) == 0 {
		t.Fatalf("pins held: %v and %v; want both processes to hold some", a, b)
	}
	for c := range a {
		if b[c] {
			t.Errorf("both processes took the pin of %s", c)
		}
	}
	for p := range n {
		if c := schema.ConsumerFanoutPartition(p); !a[c] && !b[c] {
			t.Errorf("nobody holds %s: %v, %v", c, a, b)
		}
	}
}

// checkOrder fails unless every user got the messages of its one
// conversation, want of them, each in seq order with the previous one's
// seq as prev. A message may come again after a hand-over whose acks the
// server had not applied yet (pinned: at least once); what comes again is
// counted, never taken for the next one.
func checkOrder(t *testing.T, ds []delivery, want int) {
	t.Helper()
	again := 0
	for user, ms := range messages(ds) {
		var last uint64
		seen := map[uint64]bool{}
		for _, m := range ms {
			if seen[m.Seq] {
				again++
				continue
			}
			seen[m.Seq] = true
			if m.Seq <= last || m.Prev != last {
				t.Fatalf("%s got seq %d (prev %d) of %s after %d", user, m.Seq, m.Prev, m.Conv, last)
			}
			last = m.Seq
		}
		if len(seen) != want {
			t.Errorf("%s got %d messages, want %d", user, len(seen), want)
		}
	}
	if again > 0 {
		t.Logf("%d deliveries came again after a hand-over", again)
	}
}

// drain adds message pushes to ds until it holds n distinct (user, seq)
// or none comes for 15 s; when last, it also takes what follows within a
// second.
func drain(t *testing.T, h *harness, ds []delivery, n int, last bool) []delivery {
	t.Helper()
	seen := map[string]bool{}
	key := func(d delivery) string {
		var msg protocol.Message
		_ = json.Unmarshal(d.data, &msg)
		return fmt.Sprint(d.user, ".", msg.Seq)
	}
	for _, d := range ds {
		seen[key(d)] = true
	}
	for len(seen) < n {
		select {
		case m := <-h.got:
			d := toDelivery(m)
			if d.event == schema.EventMessage {
				ds = append(ds, d)
				seen[key(d)] = true
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("got %d of %d deliveries", len(seen), n)
		}
	}
	for last {
		select {
		case m := <-h.got:
			if d := toDelivery(m); d.event == schema.EventMessage {
				ds = append(ds, d)
			}
		case <-time.After(time.Second):
			last = false
		}
	}
	return ds
}

func publishAll(t *testing.T, js jetstream.JetStream, convs []string, per int, tag string) {
	t.Helper()
	for i := range per {
		for _, conv := range convs {
			env, _ := json.Marshal(protocol.Envelope{Sender: "x", ClientID: fmt.Sprint(tag, i), Body: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
			if _, err := js.PublishAsync(schema.Msg(conv), env); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged")
	}
}

// Three processes deliver every partition while one of them stops half way
// through (its partitions are shared out again): every member gets every
// message of its conversation once, in order, with the right prev.
func TestOrderAcrossPartitionsAndProcesses(t *testing.T) {
	h := newHarness(t)
	h.worker(t, h.js)
	stopB := h.worker(t, h.js)
	h.worker(t, h.js)
	time.Sleep(time.Second)
	convs := groupsInEvery(t, h, 2)
	h.collect(t, schema.EventConversation, 2*len(convs))
	const per = 300
	publishAll(t, h.js, convs, per, "m")
	var ds []delivery
	for len(ds) < per*len(convs)/2 {
		select {
		case m := <-h.got:
			if d := toDelivery(m); d.event == schema.EventMessage {
				ds = append(ds, d)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%d deliveries before the stop", len(ds))
		}
	}
	stopB()
	ds = drain(t, h, ds, 2*per*len(convs), true)
	checkOrder(t, ds, per)
}

// mainSchema makes the schema as a release before partitions did: the CHAT
// stream stores chat.msg.<conv> and one fan-out consumer reads it all.
func mainSchema(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := t.Context()
	old := schema.ChatStream(schema.Config{})
	old.SubjectTransform = nil
	delete(old.Metadata, schema.MetaPartitions)
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, schema.ConversationsBucket(schema.Config{})); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, schema.StreamChat, schema.FanoutConsumer()); err != nil {
		t.Fatal(err)
	}
}

// A stream of a release before partitions is upgraded while a fan-out
// runs on it with a backlog: what was stored before is delivered first,
// then what is stored partitioned, each message once and in order with
// its prev, and the history reads both in one order.
func TestUpgradeWhileDelivering(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	mainSchema(t, js)
	ctx := t.Context()
	convs, err := conversation.New(ctx, conversation.Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, js: js, convs: convs, got: make(chan *nats.Msg, 100_000)}
	gw, _ := natstest.Connect(t, srv)
	if _, err := gw.ChanSubscribe("chat.user.>", h.got); err != nil {
		t.Fatal(err)
	}
	_ = gw.Flush()
	var groups []string
	for i := range 8 {
		groups = append(groups, group(t, h, fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)))
	}
	const per = 200
	publishAll(t, js, groups, per, "old")
	// Workers start on the old stream with the backlog in front of them.
	h.worker(t, h.js)
	h.worker(t, h.js)
	h.collect(t, schema.EventConversation, 2*len(groups))
	ds := drain(t, h, nil, 50, false)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	l, _ := schema.ReadLayout(ctx, js)
	if l.Partitions != schema.DefaultPartitions || !l.Legacy {
		t.Fatalf("layout after the upgrade %+v", l)
	}
	publishAll(t, js, groups, per, "new")
	ds = drain(t, h, ds, 2*2*per*len(groups), true)
	checkOrder(t, ds, 2*per)

	stream, err := history.NewStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, conv := range groups {
		ms, more, err := stream.After(ctx, conv, 0, 3*per)
		if err != nil || more || len(ms) != 2*per {
			t.Fatalf("history of %s after the upgrade: %d messages, more %v, %v", conv, len(ms), more, err)
		}
		for i := 1; i < len(ms); i++ {
			if ms[i].Seq <= ms[i-1].Seq {
				t.Fatalf("history of %s out of order at %d", conv, i)
			}
		}
		last, err := stream.Last(ctx, conv)
		if err != nil || last != ms[len(ms)-1].Seq {
			t.Fatalf("last of %s: %d, %v; want %d", conv, last, err, ms[len(ms)-1].Seq)
		}
		page, _, err := stream.Before(ctx, conv, ms[per].Seq+1, 2)
		if err != nil || len(page) != 2 || page[0].Seq != ms[per-1].Seq || page[1].Seq != ms[per].Seq {
			t.Fatalf("the page across the upgrade of %s: %+v, %v", conv, page, err)
		}
	}
}
