package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

func TestPresenceRecordsConnections(t *testing.T) {
	h := newHarness(t)
	alice := h.dial("alice")
	session := alice.Welcome().Session
	wait := func() presenceCall {
		select {
		case c := <-h.presence.calls:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("presence not told in 5 s")
			return presenceCall{}
		}
	}
	if got, want := wait(), (presenceCall{connected: true, uid: "alice", session: session, device: "alice-phone"}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	_ = alice.Close()
	if got, want := wait(), (presenceCall{uid: "alice", session: session}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestPresenceQuery(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob", "dave")
	h.convs.add("g2", protocol.ConversationGroup, "carol", "carol", "erin")
	seen := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	h.presence.set("bob", PresenceState{Online: true, Devices: 2})
	h.presence.set("dave", PresenceState{LastSeen: seen})
	h.presence.set("carol", PresenceState{Online: true, Devices: 1})
	alice := h.dial("alice")

	var f struct {
		Type  string                    `json:"type"`
		Users map[string]map[string]any `json:"users"`
	}
	mustDo(t, alice, req(protocol.TypePresence, func(r *protocol.Request) {
		r.Users = []string{"bob", "carol", "dave", "bob", "frank"}
	}), &f)
	// carol and frank share no conversation with alice: left out.
	want := map[string]map[string]any{
		"bob":  {"online": true, "devices": float64(2)},
		"dave": {"online": false, "last_seen": protocol.FormatTime(seen)},
	}
	if f.Type != protocol.TypePresence || !reflect.DeepEqual(f.Users, want) {
		t.Fatalf("got %s %v, want %v", f.Type, f.Users, want)
	}

	many := make([]string, maxPresenceQuery+1)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	wantCode(t, do(t, alice, req(protocol.TypePresence, func(r *protocol.Request) { r.Users = many }), nil), protocol.CodeBadRequest, "at most 500")
	wantCode(t, do(t, alice, req(protocol.TypePresence, func(r *protocol.Request) { r.Users = []string{"a b"} }), nil), protocol.CodeBadRequest, "users must match")
}

func TestTyping(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	h.convs.add("g2", protocol.ConversationGroup, "carol", "carol")
	notices := h.subscribe(schema.ConvTyping("*"))
	alice := h.dial("alice")

	mustDo(t, alice, req(protocol.TypeTyping, func(r *protocol.Request) { r.Conv = "g1" }), nil)
	m := next(t, notices)
	var n schema.TypingNotice
	if err := json.Unmarshal(m.Data, &n); err != nil || m.Subject != schema.ConvTyping("g1") || n.User != "alice" {
		t.Fatalf("notice on %s: %s (%v)", m.Subject, m.Data, err)
	}
	wantCode(t, do(t, alice, req(protocol.TypeTyping, func(r *protocol.Request) { r.Conv = "g2" }), nil), protocol.CodeForbidden, "")
	select {
	case m := <-notices:
		t.Fatalf("typing in a conversation of others published %s", m.Data)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestTypingPushNeedsMembership checks the hub's last filter: a typing or
// read push on a user's subject is dropped once the user is no longer a
// member, even if the fan-out expanded it with an older member list.
func TestTypingPushNeedsMembership(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "bob", "bob", "alice")
	alice := h.dial("alice")
	push := func(event, frame string) {
		if err := h.nc.Publish(schema.User("alice", event), []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	push(schema.EventTyping, `{"type":"typing","conv":"g1","user":"bob"}`)
	if ev := nextEvent(t, alice); ev.Type != protocol.TypeTyping {
		t.Fatalf("got %s", ev.Raw)
	}
	h.convs.drop("g1", "alice")
	push(schema.EventTyping, `{"type":"typing","conv":"g1","user":"bob"}`)
	push(schema.EventRead, `{"type":"read","conv":"g1","user":"bob","seq":3}`)
	push(schema.EventTyping, `{"type":"typing","conv":"not valid","user":"bob"}`)
	// Pushes of other kinds are not filtered: the stream orders them.
	push(schema.EventMember, `{"type":"member","conv":"g1","user":"alice","action":"removed"}`)
	if ev := nextEvent(t, alice); ev.Type != protocol.TypeMember {
		t.Fatalf("after the removal got %s", ev.Raw)
	}
}

func TestRead(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	h.convs.add("g2", protocol.ConversationGroup, "carol", "carol")
	h.msgs.setLast("g1", 10)
	notices := h.subscribe(schema.ConvRead("*"))
	alice := h.dial("alice")
	notice := func(m *nats.Msg) schema.ReadNotice {
		var n schema.ReadNotice
		if err := json.Unmarshal(m.Data, &n); err != nil || m.Subject != schema.ConvRead("g1") {
			t.Fatalf("notice on %s: %s (%v)", m.Subject, m.Data, err)
		}
		return n
	}

	// Past the last message is clamped to it.
	mustDo(t, alice, req(protocol.TypeRead, func(r *protocol.Request) { r.Conv, r.Seq = "g1", 99 }), nil)
	if n := notice(next(t, notices)); n.User != "alice" || n.Seq != 10 || n.Except != nil {
		t.Fatalf("notice %+v", n)
	}
	if got := h.convs.marker("g1", "alice"); got != 10 {
		t.Fatalf("marker %d, want 10", got)
	}
	// Backwards does not move the marker and tells nobody.
	mustDo(t, alice, req(protocol.TypeRead, func(r *protocol.Request) { r.Conv, r.Seq = "g1", 4 }), nil)
	h.msgs.setLast("g1", 12)
	mustDo(t, alice, req(protocol.TypeRead, func(r *protocol.Request) { r.Conv, r.Seq = "g1", 12 }), nil)
	if n := notice(next(t, notices)); n.Seq != 12 {
		t.Fatalf("after a read backwards the next notice is %+v, want seq 12", n)
	}
	// Without an id there is no reply, but the marker moves.
	h.msgs.setLast("g1", 13)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := alice.WriteRaw(ctx, []byte(`{"type":"read","conv":"g1","seq":13}`)); err != nil {
		t.Fatal(err)
	}
	if n := notice(next(t, notices)); n.Seq != 13 {
		t.Fatalf("notice %+v", n)
	}

	wantCode(t, do(t, alice, req(protocol.TypeRead, func(r *protocol.Request) { r.Conv, r.Seq = "g2", 1 }), nil), protocol.CodeForbidden, "")
	wantCode(t, do(t, alice, req(protocol.TypeRead, func(r *protocol.Request) { r.Conv, r.Seq = "g1", -1 }), nil), protocol.CodeBadRequest, "seq must be")
}

// TestIdlessTypingAndReadGetOnlyErrors checks that typing and read without
// an id get no ok when they succeed, and their error (without an id) when
// they are refused: a non-member's typing gets forbidden.
func TestIdlessTypingAndReadGetOnlyErrors(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	h.convs.add("g2", protocol.ConversationGroup, "carol", "carol")
	alice := h.dial("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, f := range []string{
		`{"type":"typing","conv":"g1"}`,         // fine: nothing back
		`{"type":"read","conv":"g1","seq":1}`,   // fine: nothing back
		`{"type":"typing","conv":"g2"}`,         // forbidden
		`{"type":"read","conv":"g2","seq":1}`,   // forbidden
		`{"type":"typing","conv":"not valid"}`,  // bad_request
		`{"type":"typing","conv":"g2","id":""}`, // an empty id is no id: forbidden
	} {
		if err := alice.WriteRaw(ctx, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Replies come in order: the errors came before the pong.
	var codes []string
	for {
		short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
		ev, err := alice.NextEvent(short)
		cancelShort()
		if err != nil {
			break
		}
		var e protocol.Error
		if json.Unmarshal(ev.Raw, &e) != nil || e.Type != protocol.TypeError || e.ID != "" {
			t.Fatalf("unexpected frame %s", ev.Raw)
		}
		codes = append(codes, e.Code)
	}
	want := []string{protocol.CodeForbidden, protocol.CodeForbidden, protocol.CodeBadRequest, protocol.CodeForbidden}
	if !slices.Equal(codes, want) {
		t.Fatalf("errors %v, want %v", codes, want)
	}
}
