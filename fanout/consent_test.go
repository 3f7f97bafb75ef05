package fanout_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// stateOf decodes a conversation push's state.
func stateOf(t *testing.T, d delivery) string {
	t.Helper()
	var f protocol.ConversationFrame
	if err := json.Unmarshal(d.data, &f); err != nil || f.Conversation == nil {
		t.Fatalf("conversation push %s: %v", d, err)
	}
	return f.Conversation.State
}

// A request is pushed to each side with its own state; acceptance is
// pushed to both; a decline reaches only the decliner, as a removal.
func TestRequestStatesArePushedPerUser(t *testing.T) {
	h := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, _, err := h.convs.CreateDirect(ctx, conversation.Actor{User: "mallory"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, p := range h.collect(t, schema.EventConversation, 2) {
		if p.event == schema.EventConversation {
			states[p.user] = stateOf(t, p)
		}
	}
	if states["alice"] != protocol.ConvStateRequest || states["mallory"] != protocol.ConvStatePending {
		t.Fatalf("states pushed %v", states)
	}
	if err := h.convs.Decline(ctx, conversation.Actor{User: "alice"}, d.Conv); err != nil {
		t.Fatal(err)
	}
	p := h.next(t)
	var ev protocol.MemberEvent
	if p.user != "alice" || p.event != schema.EventMember || json.Unmarshal(p.data, &ev) != nil || ev.Action != protocol.MemberActionRemoved || ev.User != "alice" {
		t.Fatalf("decline pushed %s", p)
	}
	// The requester's next message reaches only the requester.
	h.send(t, d.Conv, "mallory", "hello?", "")
	if got := messages(h.collect(t, schema.EventMessage, 1)); len(got["alice"]) != 0 || len(got["mallory"]) != 1 {
		t.Fatalf("after the decline: %+v", got)
	}

	d2, _, err := h.convs.CreateDirect(ctx, conversation.Actor{User: "bob"}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	h.collect(t, schema.EventConversation, 2)
	if _, err := h.convs.Accept(ctx, conversation.Actor{User: "carol"}, d2.Conv); err != nil {
		t.Fatal(err)
	}
	states = map[string]string{}
	for _, p := range h.collect(t, schema.EventConversation, 2) {
		if p.event == schema.EventConversation {
			states[p.user] = stateOf(t, p)
		}
	}
	if s, ok := states["bob"]; !ok || s != "" || states["carol"] != "" {
		t.Fatalf("acceptance pushed %v, want both without state", states)
	}
}
