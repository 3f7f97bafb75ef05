package fanout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// TestMemberPushesInLargeGroups: past MembersInline (100) members an add
// or a removal is told to the users added or removed and the one who
// acted, not to every member (N joins would cost N²/2 pushes); crossing
// the size either way pushes the group to every member once, so clients
// drop (or get back) the member list they keep.
func TestMemberPushesInLargeGroups(t *testing.T) {
	// One fan-out partition: the sentinel below comes after the change.
	h := newHarnessPartitions(t, 1)
	h.worker(t, h.js)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	others := make([]string, 99)
	for i := range others {
		others[i] = fmt.Sprintf("u%03d", i)
	}
	big := group(t, h, "owner", others...) // 100 members
	h.collect(t, schema.EventConversation, 100)
	small := group(t, h, "alice", "bob")
	h.collect(t, schema.EventConversation, 2)
	owner := conversation.Actor{User: "owner", Session: "s-owner"}

	// step does change, then a message in the small group, and returns
	// the pushes that came before it: the fan-out handles one
	// publisher's events in order, so they are all the change's.
	step := func(change func() error) (member map[string]int, conv map[string]int) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatal(err)
		}
		h.send(t, small, "alice", "sentinel", "")
		member, conv = map[string]int{}, map[string]int{}
		for seen := 0; seen < 2; {
			d := h.next(t)
			switch d.event {
			case schema.EventMessage:
				seen++
			case schema.EventMember:
				member[d.user]++
			case schema.EventConversation:
				var f protocol.ConversationFrame
				if err := json.Unmarshal(d.data, &f); err != nil || f.Conversation == nil || f.Conversation.Conv != big {
					t.Fatalf("conversation push %s", d.data)
				}
				if f.Conversation.MemberCount > 100 && len(f.Conversation.Members) > 0 {
					t.Errorf("a push of the group of %d lists its members", f.Conversation.MemberCount)
				}
				conv[d.user]++
			}
		}
		return member, conv
	}
	users := func(m map[string]int) []string {
		var out []string
		for u := range m {
			out = append(out, u)
		}
		sort.Strings(out)
		return out
	}
	add := func(u string) func() error {
		return func() error { _, _, err := h.convs.AddMembers(ctx, owner, big, []string{u}); return err }
	}
	remove := func(u string) func() error {
		return func() error { _, err := h.convs.RemoveMember(ctx, owner, big, u); return err }
	}

	// 100 → 101: crossing; the member push only to the new member and
	// the owner, the group to all 101 (the new member twice: joined, and
	// the crossing).
	member, conv := step(add("x100"))
	if got := users(member); fmt.Sprint(got) != "[owner x100]" {
		t.Fatalf("member pushes of the 101st add went to %v", got)
	}
	if len(conv) != 101 || conv["x100"] != 2 || conv["u000"] != 1 {
		t.Fatalf("conversation pushes of the crossing add: %d users, x100 %d, u000 %d", len(conv), conv["x100"], conv["u000"])
	}
	// 101 → 102: no crossing, no push to the other members.
	member, conv = step(add("x101"))
	if got := users(member); fmt.Sprint(got) != "[owner x101]" || fmt.Sprint(users(conv)) != "[x101]" {
		t.Fatalf("the 102nd add: member pushes to %v, conversation pushes to %v", got, users(conv))
	}
	// 102 → 101: the removed user and the owner hear of it.
	member, conv = step(remove("x101"))
	if got := users(member); fmt.Sprint(got) != "[owner x101]" || len(conv) != 0 {
		t.Fatalf("a removal at 102: member pushes to %v, conversation pushes to %v", got, users(conv))
	}
	// 101 → 100: crossing back; every member gets the group with its list.
	member, conv = step(remove("x100"))
	if got := users(member); fmt.Sprint(got) != "[owner x100]" || len(conv) != 100 || conv["x100"] != 0 {
		t.Fatalf("the removal back to 100: member pushes to %v, conversation pushes to %d users", got, len(conv))
	}
	// 100 → 101 → 100 again is the small-group rule below it: a removal
	// at 100 reaches every member.
	member, _ = step(remove("u000"))
	if len(member) != 100 { // the 99 remaining and u000
		t.Fatalf("a removal at 100 reached %d users, want 100", len(member))
	}
}
