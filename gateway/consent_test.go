package gateway

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// The request state costs the send path nothing: the one member-key read
// it always made tells it too. Without kept views (this harness) a send
// also reads the document once, for the read-only rule of group.go; with
// views it reads nothing (TestSendOnKeptViewReadsNothing).
func TestSendReadsMembershipOnce(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	alice := h.dial("alice")
	before := map[string]int{}
	for _, m := range []string{"Membership", "IsMember", "Get", "Accept"} {
		before[m] = h.convs.calls(m)
	}
	for i := range 3 {
		mustDo(t, alice, req(protocol.TypeSend, func(r *protocol.Request) {
			r.Conv, r.ClientID, r.Body = "g1", "m-"+string(rune('a'+i)), json.RawMessage(`{"text":"hi"}`)
		}), nil)
	}
	got := map[string]int{}
	for m, n := range before {
		got[m] = h.convs.calls(m) - n
	}
	if got["Membership"] != 3 || got["IsMember"] != 0 || got["Get"] != 3 || got["Accept"] != 0 {
		t.Fatalf("3 sends made %v reads; want 3 Membership, 3 Get and nothing else", got)
	}
}

// The recipient of a request shares no typing or read receipts; sending
// accepts it, once.
func TestRequestRecipientSharesNothingUntilSending(t *testing.T) {
	h := newHarness(t)
	h.convs.add("d1", protocol.ConversationDirect, "", "mallory", "alice")
	h.convs.request("d1", "alice")
	h.msgs.setLast("d1", 5)
	typing := h.subscribe(schema.ConvTyping("d1"))
	reads := h.subscribe(schema.ConvRead("d1"))
	alice := h.dial("alice")
	mustDo(t, alice, req(protocol.TypeTyping, func(r *protocol.Request) { r.Conv = "d1" }), nil)
	mustDo(t, alice, req(protocol.TypeRead, func(r *protocol.Request) { r.Conv, r.Seq = "d1", 5 }), nil)
	select {
	case m := <-typing:
		t.Fatalf("typing published from a request: %s", m.Data)
	case m := <-reads:
		t.Fatalf("read published from a request: %s", m.Data)
	case <-time.After(300 * time.Millisecond):
	}
	if h.convs.marker("d1", "alice") != 5 {
		t.Error("the recipient's own marker did not move")
	}
	for i := range 2 {
		mustDo(t, alice, req(protocol.TypeSend, func(r *protocol.Request) {
			r.Conv, r.ClientID, r.Body = "d1", "a-"+string(rune('a'+i)), json.RawMessage(`{"text":"ok"}`)
		}), nil)
	}
	if n := h.convs.calls("Accept"); n != 1 {
		t.Fatalf("two sends in a request accepted it %d times, want once", n)
	}
	mustDo(t, alice, req(protocol.TypeTyping, func(r *protocol.Request) { r.Conv = "d1" }), nil)
	select {
	case <-typing:
	case <-time.After(5 * time.Second):
		t.Fatal("no typing notice after accepting")
	}
}
