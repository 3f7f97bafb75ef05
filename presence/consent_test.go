package presence

import (
	"context"
	"slices"
	"testing"

	"github.com/natter-chat/natter/conversation"
)

// A message request shares nothing of its recipient until accepted: the
// recipient's presence does not reach the requester, the requester's
// does reach the recipient.
func TestAudienceLeavesOutUnacceptedRequests(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	convs := request(t, e, "mallory", "alice")
	got, err := Audience(ctx, convs, "alice", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("alice's presence goes to %v through a request she has not accepted", got)
	}
	if got, _ := Audience(ctx, convs, "mallory", 100); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("mallory's audience %v, want [alice]", got)
	}
	if _, err := convs.Accept(ctx, conversation.Actor{User: "alice"}, directConv(t, convs, "mallory", "alice")); err != nil {
		t.Fatal(err)
	}
	if got, _ := Audience(ctx, convs, "alice", 100); !slices.Equal(got, []string{"mallory"}) {
		t.Errorf("after accepting, alice's audience %v, want [mallory]", got)
	}
}
