package fanout_test

import (
	"context"
	"encoding/json"
	"slices"
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

// invitedIn decodes a conversation push's invited list and state.
func invitedIn(t *testing.T, d delivery) ([]string, string) {
	t.Helper()
	var f protocol.ConversationFrame
	if err := json.Unmarshal(d.data, &f); err != nil || f.Conversation == nil {
		t.Fatalf("conversation push %s: %v", d, err)
	}
	return f.Conversation.Invited, f.Conversation.State
}

// The members of a group get its invited list whenever it changes: an
// invitation, its withdrawal by the owner and its decline. The invitee
// hears of a withdrawal as of a removal.
func TestMembersSeeTheInvitedListChange(t *testing.T) {
	h := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, u := range []string{"erin", "fred"} {
		if _, err := h.convs.SetAddPolicy(ctx, u, protocol.AddPolicyNobody); err != nil {
			t.Fatal(err)
		}
	}
	conv := group(t, h, "alice", "bob")
	h.collect(t, schema.EventConversation, 2) // the gateway spares alice's origin connection
	alice := conversation.Actor{User: "alice", Session: "s-alice"}
	if _, _, _, err := h.convs.AddOrInvite(ctx, alice, conv, []string{"erin", "fred"}); err != nil {
		t.Fatal(err)
	}
	// erin and fred get their invitations; alice (every connection: the
	// reply has no list) and bob the list.
	lists := map[string][]string{}
	for _, d := range h.collect(t, schema.EventConversation, 4) {
		if d.event != schema.EventConversation {
			t.Fatalf("unexpected push %s", d)
		}
		inv, st := invitedIn(t, d)
		switch d.user {
		case "erin", "fred":
			if st != protocol.ConvStateInvited {
				t.Errorf("%s's push has state %q", d.user, st)
			}
		default:
			if st != "" || d.origin != "" {
				t.Errorf("%s's push has state %q, origin %q", d.user, st, d.origin)
			}
			lists[d.user] = inv
		}
	}
	if want := []string{"erin", "fred"}; !slices.Equal(lists["alice"], want) || !slices.Equal(lists["bob"], want) {
		t.Fatalf("members' invited lists %v, want %v each", lists, want)
	}

	if _, err := h.convs.RemoveMember(ctx, alice, conv, "erin"); err != nil {
		t.Fatal(err)
	}
	lists = map[string][]string{}
	var erinTold bool
	for _, d := range h.collect(t, schema.EventConversation, 2) {
		switch d.event {
		case schema.EventMember:
			var ev protocol.MemberEvent
			if d.user != "erin" || json.Unmarshal(d.data, &ev) != nil || ev.User != "erin" || ev.Action != protocol.MemberActionRemoved || ev.By != "alice" {
				t.Fatalf("withdrawal pushed %s", d)
			}
			erinTold = true
		case schema.EventConversation:
			lists[d.user], _ = invitedIn(t, d)
		}
	}
	if !erinTold {
		// Published before the list, on one connection.
		t.Error("erin was not told her invitation was withdrawn")
	}
	if want := []string{"fred"}; len(lists) != 2 || !slices.Equal(lists["alice"], want) || !slices.Equal(lists["bob"], want) {
		t.Fatalf("after the withdrawal the members got %v, want [fred] each", lists)
	}

	if err := h.convs.Decline(ctx, conversation.Actor{User: "fred"}, conv); err != nil {
		t.Fatal(err)
	}
	lists = map[string][]string{}
	for _, d := range h.collect(t, schema.EventConversation, 2) {
		if d.event == schema.EventConversation {
			lists[d.user], _ = invitedIn(t, d)
		}
	}
	if _, ok := lists["alice"]; !ok || len(lists["alice"]) != 0 || len(lists["bob"]) != 0 {
		t.Fatalf("after the decline the members got %v, want empty lists", lists)
	}
}
