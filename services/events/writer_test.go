package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/services"
	"github.com/natter-chat/natter/services/events"
)

// harness is a real embedded JetStream with the schema, a conversation
// store, a registry of two services (echo posts as echo-bot, other as
// other-bot) with their consumers, and a Writer running.
type harness struct {
	js    jetstream.JetStream
	convs *conversation.Store
	reg   *services.Registry
	idx   *services.Index
}

func start(t *testing.T) *harness {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	convs, err := conversation.New(ctx, conversation.Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := services.Open(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	since := map[string]time.Time{}
	for name, sender := range map[string]string{"echo": "echo-bot", "other": "other-bot"} {
		s := &services.Service{Name: name, Senders: []string{sender}}
		if err := reg.Put(ctx, s); err != nil {
			t.Fatal(err)
		}
		since[name] = s.Created
	}
	if err := schema.EnsureServiceConsumers(ctx, js, since); err != nil {
		t.Fatal(err)
	}
	idx, err := services.Watch(ctx, js, services.WatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for len(idx.Services()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	w := events.New(events.Config{}, js, convs, idx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &harness{js: js, convs: convs, reg: reg, idx: idx}
}

func (h *harness) post(t *testing.T, conv, sender, kind string, ref uint64, text string) uint64 {
	t.Helper()
	env, _ := json.Marshal(protocol.Envelope{Sender: sender, ClientID: fmt.Sprintf("c-%d", time.Now().UnixNano()), Kind: kind, Ref: ref,
		Body: json.RawMessage(fmt.Sprintf(`{"text":%q}`, text))})
	ack, err := h.js.Publish(t.Context(), schema.Msg(conv), env)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// next fetches service name's next event from its consumer.
func (h *harness) next(t *testing.T, name string) protocol.ServiceEvent {
	t.Helper()
	c, err := h.js.Consumer(t.Context(), schema.StreamServiceEvents, schema.ServiceEventsConsumerName(name))
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("%s: no event: %v", name, err)
	}
	_ = m.Ack()
	var ev protocol.ServiceEvent
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		t.Fatal(err)
	}
	if m.Subject() != schema.ServiceEvent(name, ev.Conv) || ev.Service != name || ev.V != 1 || ev.ID != events.EventID(ev.Seq, name) {
		t.Fatalf("event on %s: %+v", m.Subject(), ev)
	}
	return ev
}

// none checks that service name has no event waiting.
func (h *harness) none(t *testing.T, name string) {
	t.Helper()
	c, err := h.js.Consumer(t.Context(), schema.StreamServiceEvents, schema.ServiceEventsConsumerName(name))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := c.Next(jetstream.FetchMaxWait(300 * time.Millisecond)); err == nil {
		t.Fatalf("%s got %s", name, m.Data())
	}
}

// A service hears of the messages, edits, deletes, reactions and
// membership changes of the conversations its sender is in, not of what it
// posted itself, not of other conversations, and nothing after its
// sender was removed; another service hears nothing of them.
func TestEvents(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	alice := conversation.Actor{User: "alice", Session: "s1"}
	g, err := h.convs.CreateGroup(ctx, alice, "team", []string{"bob", "echo-bot"})
	if err != nil {
		t.Fatal(err)
	}
	ev := h.next(t, "echo")
	if !slices.Equal(ev.As, []string{"echo-bot"}) || ev.Type != protocol.ServiceEventMemberAdded || ev.Conv != g.Conv || !slices.Contains(ev.Users, "echo-bot") || ev.By != "alice" {
		t.Fatalf("created: %+v", ev)
	}
	other, err := h.convs.CreateGroup(ctx, alice, "no bots", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	h.post(t, other.Conv, "alice", "", 0, "secret")
	hi := h.post(t, g.Conv, "alice", "", 0, "hi")
	h.post(t, g.Conv, "echo-bot", "", 0, "echo: hi")
	h.post(t, g.Conv, "alice", protocol.KindEdit, hi, "hi!")
	h.post(t, g.Conv, "bob", protocol.KindReaction, hi, "+1")
	h.post(t, g.Conv, "alice", protocol.KindDelete, hi, "")
	for _, want := range []struct {
		typ, sender string
		ref         uint64
	}{{protocol.ServiceEventMessage, "alice", 0}, {protocol.ServiceEventEdit, "alice", hi},
		{protocol.ServiceEventReaction, "bob", hi}, {protocol.ServiceEventDelete, "alice", hi}} {
		ev := h.next(t, "echo")
		if ev.Type != want.typ || ev.Sender != want.sender || ev.Ref != want.ref || ev.Conv != g.Conv {
			t.Fatalf("got %+v, want %+v", ev, want)
		}
		if want.typ == protocol.ServiceEventMessage && (ev.Seq != hi || string(ev.Body) != `{"text":"hi"}`) {
			t.Fatalf("message %+v", ev)
		}
	}
	if _, err := h.convs.RemoveMember(ctx, alice, g.Conv, "echo-bot"); err != nil {
		t.Fatal(err)
	}
	ev = h.next(t, "echo")
	if ev.Type != protocol.ServiceEventMemberRemoved || !slices.Equal(ev.Users, []string{"echo-bot"}) {
		t.Fatalf("removed: %+v", ev)
	}
	h.post(t, g.Conv, "alice", "", 0, "after")
	h.none(t, "echo")
	h.none(t, "other")
}
