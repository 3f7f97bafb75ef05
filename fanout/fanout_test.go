package fanout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/fanout"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// harness is a real embedded JetStream with the conversation store the
// test writes through and a connection standing in for the gateways,
// subscribed to every user subject; fan-out workers are added to it.
type harness struct {
	srv   *natsrv.Server
	js    jetstream.JetStream
	convs *conversation.Store
	got   chan *nats.Msg
}

// start returns a harness with one fan-out worker running.
func start(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.worker(t, h.js)
	return h
}

func newHarness(t *testing.T) *harness {
	return newHarnessPartitions(t, 0)
}

// newHarnessPartitions is newHarness with the CHAT stream in n fan-out
// partitions (0: the default).
func newHarnessPartitions(t *testing.T, n int) *harness {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := schema.Ensure(ctx, js, schema.Config{Replicas: 1, Partitions: n}); err != nil {
		t.Fatal(err)
	}
	convs, err := conversation.New(ctx, conversation.Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, js: js, convs: convs, got: make(chan *nats.Msg, 100_000)}
	gw, _ := natstest.Connect(t, srv)
	if _, err := gw.ChanSubscribe("chat.user.>", h.got); err != nil {
		t.Fatal(err)
	}
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	return h
}

// worker runs a fan-out worker on its own connection, reading
// conversations through convJS (the harness's JetStream, or a wrapper of
// it that injects faults). The returned stop ends it and waits for Run to
// return; it also runs at cleanup.
func (h *harness) worker(t *testing.T, convJS jetstream.JetStream, cfg ...fanout.Config) (stop func()) {
	t.Helper()
	nc, js := natstest.Connect(t, h.srv)
	if convJS == h.js {
		convJS = js
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	convs, err := conversation.New(ctx, conversation.Config{}, convJS)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := history.NewStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	var fcfg fanout.Config
	if len(cfg) > 0 {
		fcfg = cfg[0]
	}
	f := fanout.New(fcfg, nc, js, convs, stream)
	runCtx, cancelRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancelRun()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// send stores a message in conv as an internal service would, and
// returns its seq.
func (h *harness) send(t *testing.T, conv, sender, text, origin string) uint64 {
	t.Helper()
	env, _ := json.Marshal(protocol.Envelope{Sender: sender, ClientID: fmt.Sprintf("c-%d", time.Now().UnixNano()), Body: json.RawMessage(fmt.Sprintf(`{"text":%q}`, text))})
	msg := &nats.Msg{Subject: schema.Msg(conv), Data: env, Header: nats.Header{}}
	if origin != "" {
		msg.Header.Set(schema.HeaderOrigin, origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := h.js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// delivery is one push seen on a user subject.
type delivery struct {
	user, event, origin string
	data                []byte
}

func (d delivery) String() string { return d.user + "." + d.event + " " + string(d.data) }

func toDelivery(m *nats.Msg) delivery {
	rest := strings.TrimPrefix(m.Subject, "chat.user.")
	user, event, _ := strings.Cut(rest, ".")
	return delivery{user: user, event: event, origin: m.Header.Get(schema.HeaderOrigin), data: m.Data}
}

// next returns the next push, failing the test when none comes.
func (h *harness) next(t *testing.T) delivery {
	t.Helper()
	select {
	case m := <-h.got:
		return toDelivery(m)
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery within 15 s")
		return delivery{}
	}
}

// collect takes pushes until n of the given event came, and returns every
// push seen meanwhile.
func (h *harness) collect(t *testing.T, event string, n int) []delivery {
	t.Helper()
	var all []delivery
	for seen := 0; seen < n; {
		d := h.next(t)
		all = append(all, d)
		if d.event == event {
			seen++
		}
	}
	return all
}

func group(t *testing.T, h *harness, owner string, others ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := h.convs.CreateGroup(ctx, conversation.Actor{User: owner, Session: "s-" + owner}, "test", others)
	if err != nil {
		t.Fatal(err)
	}
	return d.Conv
}

func messages(ds []delivery) map[string][]protocol.Message {
	out := map[string][]protocol.Message{}
	for _, d := range ds {
		if d.event != schema.EventMessage {
			continue
		}
		var m protocol.Message
		if err := json.Unmarshal(d.data, &m); err != nil {
			panic(err)
		}
		out[d.user] = append(out[d.user], m)
	}
	return out
}

func TestMessageReachesEveryMember(t *testing.T) {
	h := start(t)
	conv := group(t, h, "alice", "bob", "carol")
	seq := h.send(t, conv, "alice", "hello", "session-a")
	ds := h.collect(t, schema.EventMessage, 3)
	got := messages(ds)
	for _, u := range []string{"alice", "bob", "carol"} {
		if len(got[u]) != 1 {
			t.Fatalf("%s got %d messages, want 1: %+v", u, len(got[u]), ds)
		}
		m := got[u][0]
		if m.Type != protocol.TypeMessage || m.Conv != conv || m.Seq != seq || m.Sender != "alice" || string(m.Body) != `{"text":"hello"}` {
			t.Errorf("%s got %+v", u, m)
		}
	}
	for _, d := range ds {
		if d.event != schema.EventMessage {
			continue
		}
		// Only the sender's subject can hold the origin session.
		if want := map[bool]string{true: "session-a", false: ""}[d.user == "alice"]; d.origin != want {
			t.Errorf("%s's copy carries origin %q, want %q", d.user, d.origin, want)
		}
	}
}

func TestMembershipEvents(t *testing.T) {
	h := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conv := group(t, h, "alice", "bob")
	h.send(t, conv, "alice", "before", "")
	before := h.collect(t, schema.EventMessage, 2)
	if got := messages(before); len(got["alice"]) != 1 || len(got["bob"]) != 1 || len(got["carol"]) != 0 {
		t.Fatalf("before carol joined: %+v", got)
	}

	alice := conversation.Actor{User: "alice", Session: "s-alice"}
	if _, _, err := h.convs.AddMembers(ctx, alice, conv, []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	// carol hears of the conversation, everyone of the new member.
	added := h.collect(t, schema.EventMember, 3)
	var conversationPush bool
	for _, d := range added {
		switch d.event {
		case schema.EventConversation:
			var f protocol.ConversationFrame
			if err := json.Unmarshal(d.data, &f); err != nil || d.user != "carol" || f.Conversation == nil || f.Conversation.Conv != conv {
				t.Errorf("conversation push %s %s: %v", d.user, d.data, err)
			}
			conversationPush = true
		case schema.EventMember:
			var ev protocol.MemberEvent
			if err := json.Unmarshal(d.data, &ev); err != nil || ev.Conv != conv || ev.User != "carol" || ev.Action != conversation.ActionAdded || ev.By != "alice" {
				t.Errorf("member event to %s: %s", d.user, d.data)
			}
		}
	}
	if !conversationPush {
		// It was published before the member events, on one connection.
		t.Errorf("carol got no conversation push: %+v", added)
	}
	h.send(t, conv, "bob", "after add", "")
	if got := messages(h.collect(t, schema.EventMessage, 3)); len(got["carol"]) != 1 {
		t.Fatalf("carol did not get the message sent after she was added: %+v", got)
	}

	if _, err := h.convs.RemoveMember(ctx, alice, conv, "bob"); err != nil {
		t.Fatal(err)
	}
	removed := h.collect(t, schema.EventMember, 3) // alice, carol and bob himself
	to := map[string]bool{}
	for _, d := range removed {
		var ev protocol.MemberEvent
		if d.event == schema.EventMember && json.Unmarshal(d.data, &ev) == nil && ev.User == "bob" && ev.Action == conversation.ActionRemoved {
			to[d.user] = true
		}
	}
	if !to["alice"] || !to["bob"] || !to["carol"] {
		t.Fatalf("removal reached %v, want alice, bob and carol", to)
	}
	// The removal is in stream order with the messages: the next one
	// reaches the remaining members only.
	h.send(t, conv, "alice", "after remove", "")
	h.send(t, conv, "alice", "and again", "")
	if got := messages(h.collect(t, schema.EventMessage, 4)); len(got["bob"]) != 0 || len(got["alice"]) != 2 || len(got["carol"]) != 2 {
		t.Fatalf("after bob's removal: %+v", got)
	}
}

func TestOrderPerConversation(t *testing.T) {
	h := start(t)
	convs := []string{group(t, h, "alice", "bob"), group(t, h, "alice", "carol")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 300
	// Published asynchronously and interleaved, so the fan-out has a
	// backlog to keep in order.
	var acks []jetstream.PubAckFuture
	for i := range n {
		conv := convs[i%2]
		env, _ := json.Marshal(protocol.Envelope{Sender: "alice", ClientID: fmt.Sprint(i), Body: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		f, err := h.js.PublishAsync(schema.Msg(conv), env)
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, f)
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishes not acknowledged")
	}
	for _, f := range acks {
		select {
		case err := <-f.Err():
			t.Fatal(err)
		default:
		}
	}
	// alice gets all n, bob and carol n/2 each.
	got := messages(h.collect(t, schema.EventMessage, 2*n))
	if len(got["alice"]) != n || len(got["bob"]) != n/2 || len(got["carol"]) != n/2 {
		t.Fatalf("got alice %d, bob %d, carol %d messages", len(got["alice"]), len(got["bob"]), len(got["carol"]))
	}
	for user, ms := range got {
		last := map[string]uint64{}
		for _, m := range ms {
			if m.Seq <= last[m.Conv] {
				t.Fatalf("%s got seq %d of %s after %d", user, m.Seq, m.Conv, last[m.Conv])
			}
			if m.Prev != last[m.Conv] {
				t.Fatalf("%s got seq %d of %s with prev %d, want %d", user, m.Seq, m.Conv, m.Prev, last[m.Conv])
			}
			last[m.Conv] = m.Seq
		}
	}
}

// TestPrev checks that every push carries the seq of the conversation's
// item before it: across conversations, past an invalid envelope and a
// membership event, with a cache too small for the conversations (it
// reads the history instead), and from a new worker after a restart.
func TestPrev(t *testing.T) {
	h := newHarness(t)
	stop := h.worker(t, h.js, fanout.Config{CacheSize: 1})
	convs := []string{group(t, h, "alice", "bob"), group(t, h, "alice", "carol"), group(t, h, "alice", "dave")}
	want := map[string]uint64{} // conv -> the last item's seq
	// say sends to conv and checks alice's push of it.
	say := func(conv string) {
		t.Helper()
		seq := h.send(t, conv, "alice", "hi", "")
		for {
			d := h.next(t)
			if d.event != schema.EventMessage || d.user != "alice" {
				continue
			}
			var m protocol.Message
			if err := json.Unmarshal(d.data, &m); err != nil {
				t.Fatal(err)
			}
			if m.Seq != seq || m.Conv != conv {
				t.Fatalf("push of %s/%d, want %s/%d", m.Conv, m.Seq, conv, seq)
			}
			if m.Prev != want[conv] {
				t.Fatalf("push of %s/%d has prev %d, want %d (%s)", conv, seq, m.Prev, want[conv], d.data)
			}
			want[conv] = seq
			return
		}
	}
	for i := range 6 {
		say(convs[i%3])
	}
	// An invalid envelope is no item: the next message's prev skips it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.js.Publish(ctx, schema.Msg(convs[0]), []byte(`{"sender":"alice"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.convs.AddMembers(ctx, conversation.Actor{User: "alice", Session: "s"}, convs[0], []string{"erin"}); err != nil {
		t.Fatal(err)
	}
	say(convs[0])
	say(convs[0])
	stop()
	// Sent while no worker runs: the next one starts with nothing
	// remembered and reads the history.
	seq := h.send(t, convs[1], "alice", "while down", "")
	h.worker(t, h.js)
	for {
		d := h.next(t)
		var m protocol.Message
		if d.event == schema.EventMessage && d.user == "alice" && json.Unmarshal(d.data, &m) == nil && m.Seq == seq {
			if m.Prev != want[convs[1]] {
				t.Fatalf("after a restart: push %s has prev %d, want %d", d.data, m.Prev, want[convs[1]])
			}
			want[convs[1]] = seq
			break
		}
	}
	for i := range 6 {
		say(convs[i%3])
	}
}
