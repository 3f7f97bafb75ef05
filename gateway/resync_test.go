package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// seqSet records the seqs a Session delivered in one conversation.
type seqSet struct {
	mu   sync.Mutex
	seqs map[uint64]bool
}

func (s *seqSet) add(m *protocol.Message, _ bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs[m.Seq] = true
}

// waitAll waits until every seq in 1..n was delivered.
func (s *seqSet) waitAll(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s.mu.Lock()
		got := len(s.seqs)
		s.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session delivered %d of %d messages in %s", got, n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// session opens a client.Session for user with no periodic re-sync: only
// a resync push can make it fetch what it missed.
func (h *harness) session(user string, got *seqSet) *client.Session {
	h.t.Helper()
	tok, err := auth.IssueHS256(testSecret, user, time.Hour, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.NewSession(ctx, client.SessionOptions{
		URLs: []string{h.url}, Options: client.Options{Token: tok}, OnMessage: got.add,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = s.Close() })
	// Connected and re-synced once.
	if _, err := s.Client(ctx); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// pushMessage publishes message seq of conv on user's subject, as the
// fan-out does, and stores it in the fake history. The tests push each
// conversation's seqs from 1 on, one after the other, so prev is seq-1.
func (h *harness) pushMessage(user, conv string, seq uint64) {
	h.t.Helper()
	m := &protocol.Message{Type: protocol.TypeMessage, Conv: conv, Seq: seq, Prev: seq - 1, Sender: "bob", ClientID: fmt.Sprint("c", seq), TS: "2026-01-01T00:00:00Z", Body: json.RawMessage(`{"text":"hi"}`)}
	h.msgs.put(m)
	data, err := json.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Publish(schema.User(user, schema.EventMessage), data); err != nil {
		h.t.Fatal(err)
	}
}

// nextResync waits for a resync push on c, skipping anything else.
func nextResync(t *testing.T, c *client.Client, within time.Duration) protocol.Resync {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	ev, err := c.NextEvent(ctx, protocol.TypeResync)
	if err != nil {
		t.Fatalf("no resync push in %s: %v", within, err)
	}
	var r protocol.Resync
	if err := ev.Decode(&r); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(ev.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["id"]; ok {
		t.Fatalf("resync push %s has an id", ev.Raw)
	}
	return r
}

// Pushes NATS drops because the user's dispatcher fell behind are followed
// by one resync, and a Session that gets it recovers every message.
func TestResyncAfterDroppedPushes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DispatchBacklog = 1 })
	h.convs.add("g1", protocol.ConversationGroup, "bob", "alice", "bob")
	watcher := h.dial("alice")
	got := &seqSet{seqs: map[uint64]bool{}}
	h.session("alice", got)

	const n = 3000
	for seq := range uint64(n) {
		h.pushMessage("alice", "g1", seq+1)
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if r := nextResync(t, watcher, 10*time.Second); r.Reason != protocol.ResyncDropped || r.Conv != "" {
		t.Fatalf("resync %+v, want reason dropped for every conversation", r)
	}
	got.waitAll(t, n, 20*time.Second)
	// One flood, one resync; a few more only if the flood paused for
	// longer than the quiet time (a loaded machine, where CI saw 12):
	// never one per drop, so at most one per hundred pushes.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	more := 0
	for {
		ev, err := watcher.NextEvent(ctx, protocol.TypeResync)
		if err != nil {
			break
		}
		if more++; more >= n/100 {
			t.Fatalf("%d resync pushes for one flood of %d pushes: %s", more+1, n, ev.Raw)
		}
	}
	if more > 0 {
		t.Logf("%d more resync pushes after the first (the flood paused)", more)
	}
}

// When the gateway's NATS connection reconnects, every connection is told
// to re-sync, and a Session fetches what it did not get pushed.
func TestResyncAfterNATSReconnect(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "bob", "alice", "bob")
	h.convs.add("g2", protocol.ConversationGroup, "carol", "alice", "carol")
	watcher, bob := h.dial("alice"), h.dial("bob")
	got := &seqSet{seqs: map[uint64]bool{}}
	h.session("alice", got)

	// Stored while the pushes were lost (nothing was pushed).
	for seq := range uint64(3) {
		h.msgs.put(&protocol.Message{Conv: "g1", Seq: seq + 1, Prev: seq, Sender: "bob", ClientID: fmt.Sprint("b", seq), TS: "2026-01-01T00:00:00Z", Body: json.RawMessage(`{}`)})
	}
	if err := h.srv.nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{watcher, bob} {
		if r := nextResync(t, c, 10*time.Second); r.Reason != protocol.ResyncReconnect || r.Conv != "" {
			t.Fatalf("resync %+v, want reason reconnect for every conversation", r)
		}
	}
	got.waitAll(t, 3, 10*time.Second)
	// Pushes flow again after the reconnect.
	h.pushMessage("alice", "g1", 4)
	got.waitAll(t, 4, 5*time.Second)
}

// A typing or read notice whose member-key read hangs does not hold up a
// message behind it on the same dispatcher.
func TestStalledNoticeDoesNotDelayMessages(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "bob", "alice", "bob")
	alice := h.dial("alice")
	gate := make(chan struct{})
	h.convs.mu.Lock()
	h.convs.memberGate = gate
	h.convs.mu.Unlock()

	typing := nats.NewMsg(schema.User("alice", schema.EventTyping))
	typing.Data = []byte(`{"type":"typing","conv":"g1","user":"bob"}`)
	if err := h.nc.PublishMsg(typing); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	h.pushMessage("alice", "g1", 1)
	ev := nextEvent(t, alice, protocol.TypeMessage, protocol.TypeTyping)
	if ev.Type != protocol.TypeMessage {
		t.Fatalf("got %s before the message", ev.Raw)
	}
	if d := time.Since(began); d > 500*time.Millisecond {
		t.Fatalf("the message took %s behind a stalled notice", d)
	}
	// The notice is delivered once its check answers.
	close(gate)
	h.convs.mu.Lock()
	h.convs.memberGate = nil
	h.convs.mu.Unlock()
	if err := h.nc.PublishMsg(typing); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, alice, protocol.TypeTyping)
}

// A retried send is answered from the CHAT stream while the history API is
// down: the original's seq and time, one message stored.
func TestDuplicateSendWithHistoryDown(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	alice := h.dial("alice")
	send := func(clientID string) protocol.Ack {
		var ack protocol.Ack
		mustDo(t, alice, req(protocol.TypeSend, func(r *protocol.Request) {
			r.Conv, r.ClientID, r.Body = "g1", clientID, json.RawMessage(`{"text":"hi"}`)
		}), &ack)
		return ack
	}
	first := send("m-1")
	h.msgs.mu.Lock()
	h.msgs.getErr = errors.New("history API: connection refused")
	h.msgs.mu.Unlock()
	again := send("m-1")
	if !again.Duplicate || again.Seq != first.Seq || again.TS != first.TS {
		t.Fatalf("retry acked %+v, want a duplicate of %+v", again, first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := h.js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("%d messages stored, want 1", info.State.Msgs)
	}
}
