package fanout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

var errInjected = errors.New("injected KV failure")

// faultyJS is the JetStream a fan-out worker's conversation store gets:
// reads of one key of the CONVERSATIONS bucket fail while fails > 0.
type faultyJS struct {
	jetstream.JetStream
	kv *faultyKV
}

func (j *faultyJS) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := j.JetStream.KeyValue(ctx, bucket)
	if err != nil {
		return nil, err
	}
	j.kv.KeyValue = kv
	return j.kv, nil
}

type faultyKV struct {
	jetstream.KeyValue
	mu    sync.Mutex
	key   string
	fails int
}

func (k *faultyKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	k.mu.Lock()
	fail := key == k.key && k.fails > 0
	if fail {
		k.fails--
	}
	k.mu.Unlock()
	if fail {
		return nil, errInjected
	}
	return k.KeyValue.Get(ctx, key)
}

func (k *faultyKV) failNext(key string, n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.key, k.fails = key, n
}

func (k *faultyKV) left() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fails
}

// A membership event whose member list cannot be read is retried before
// the fan-out takes the next message: the message sent after an
// acknowledged add_member reaches the new member even when the fan-out's
// first reads of the document fail.
func TestFailedMembershipEventHoldsLaterMessages(t *testing.T) {
	h := newHarness(t)
	kv := &faultyKV{}
	h.worker(t, &faultyJS{JetStream: h.js, kv: kv})
	conv := group(t, h, "alice", "bob")
	h.send(t, conv, "alice", "before", "")
	// The fan-out now holds alice and bob as the members.
	if got := messages(h.collect(t, schema.EventMessage, 2)); len(got["alice"]) != 1 || len(got["bob"]) != 1 {
		t.Fatalf("before carol joined: %+v", got)
	}

	kv.failNext("c."+conv, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := h.convs.AddMembers(ctx, conversation.Actor{User: "alice", Session: "s-alice"}, conv, []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	after := h.send(t, conv, "bob", "after add", "")

	// alice, bob and carol each get "after add"; carol hears of the
	// conversation before.
	var ds []delivery
	deadline := time.After(10 * time.Second)
	for got := 0; got < 3; {
		select {
		case m := <-h.got:
			d := toDelivery(m)
			ds = append(ds, d)
			if d.event == schema.EventMessage {
				got++
			}
		case <-deadline:
			t.Fatalf("the message after the add reached %d of 3 members: %+v", got, ds)
		}
	}
	if n := kv.left(); n != 0 {
		t.Fatalf("%d injected failures were not met", n)
	}
	var carolKnows bool
	for _, d := range ds {
		switch {
		case d.user == "carol" && d.event == schema.EventConversation:
			carolKnows = true
		case d.event == schema.EventMessage:
			var m protocol.Message
			if err := json.Unmarshal(d.data, &m); err != nil || m.Seq != after {
				t.Fatalf("%s got %s, want seq %d", d.user, d.data, after)
			}
			if d.user == "carol" && !carolKnows {
				t.Fatalf("carol got the message before the conversation push: %+v", ds)
			}
		}
	}
	if got := messages(ds); len(got["carol"]) != 1 {
		t.Fatalf("carol did not get the message sent after she was added: %+v", got)
	}
}

// A worker stopped in the middle of a backlog hands over at once: the
// standby delivers the rest within about a second (not after PinnedTTL),
// and every member gets every message exactly once, in order per
// conversation, across the two workers. One partition: with more, the
// two workers share the partitions from the start and no single worker
// holds the backlog (TestOrderAcrossPartitionsAndProcesses covers that).
func TestHandOverMidBacklogKeepsOrder(t *testing.T) {
	h := newHarnessPartitions(t, 1)
	stopA := h.worker(t, h.js)
	convs := []string{group(t, h, "alice", "bob"), group(t, h, "carol", "dave")}
	// Worker A has delivered the creation events, so it holds the pin.
	h.collect(t, schema.EventConversation, 2)
	h.worker(t, h.js)

	const n = 4000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		env, _ := json.Marshal(protocol.Envelope{Sender: "alice", ClientID: fmt.Sprint(i), Body: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		if _, err := h.js.PublishAsync(schema.Msg(convs[i%2]), env); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishes not acknowledged")
	}

	// Stop A while it is part way through the backlog.
	var ds []delivery
	msgs := 0
	take := func(within time.Duration) bool {
		var m *nats.Msg
		if within == 0 {
			select {
			case m = <-h.got:
			default:
				return false
			}
		} else {
			select {
			case m = <-h.got:
			case <-time.After(within):
				return false
			}
		}
		d := toDelivery(m)
		if d.event == schema.EventMessage {
			ds = append(ds, d)
			msgs++
		}
		return true
	}
	for msgs < n/2 {
		if !take(15 * time.Second) {
			t.Fatalf("only %d deliveries before the stop", msgs)
		}
	}
	stopA()
	stopped := time.Now()
	// What A published before Run returned is already queued here or
	// about to be; the next delivery after a quiet moment is B's.
	time.Sleep(50 * time.Millisecond)
	for take(0) {
	}
	before := msgs
	if !take(3 * time.Second) {
		t.Fatalf("no delivery within 3 s after the pinned worker stopped (%d of %d)", msgs, 2*n)
	}
	if took := time.Since(stopped); took > 1500*time.Millisecond {
		t.Errorf("the standby took over after %v, want about a second at most", took)
	}
	for msgs < 2*n {
		if !take(15 * time.Second) {
			t.Fatalf("got %d of %d deliveries (%d before the hand-over)", msgs, 2*n, before)
		}
	}
	for user, ms := range messages(ds) {
		last := map[string]uint64{}
		for _, m := range ms {
			if m.Seq <= last[m.Conv] {
				t.Fatalf("%s got seq %d of %s after %d", user, m.Seq, m.Conv, last[m.Conv])
			}
			last[m.Conv] = m.Seq
		}
		if len(ms) != n/2 {
			t.Errorf("%s got %d messages, want %d", user, len(ms), n/2)
		}
	}
	// Nothing more: no late redelivery of what A had pulled ahead.
	if take(2*time.Second) && msgs > 2*n {
		t.Fatalf("a delivery after all %d: %+v", 2*n, ds[len(ds)-1])
	}
}
