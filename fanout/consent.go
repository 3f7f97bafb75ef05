package fanout

import (
	"context"
	"encoding/json"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// pushConversationStates is pushConversation for a document that renders
// differently per user (a message request, invitations): one frame per
// consent state, each to the users in it.
func (f *Fanout) pushConversationStates(d *conversation.Doc, c *protocol.Conversation, users []string, origin string) error {
	byState := make(map[string][]string, 2)
	for _, u := range users {
		st := d.StateFor(u)
		byState[st] = append(byState[st], schema.User(u, schema.EventConversation))
	}
	for st, subjects := range byState {
		cc := *c
		cc.State = st
		frame, _ := json.Marshal(protocol.ConversationFrame{Type: protocol.TypeConversation, Conversation: &cc})
		if err := f.deliver(subjects, frame, origin); err != nil {
			return err
		}
	}
	return nil
}

// pushInvitations tells the users a change invited, and who are invited
// still, of the conversation they may accept.
func (f *Fanout) pushInvitations(ctx context.Context, d *conversation.Doc, invited []string) error {
	var still []string
	for _, u := range invited {
		if d.IsInvited(u) {
			still = append(still, u)
		}
	}
	if len(still) == 0 {
		return nil
	}
	return f.pushConversation(ctx, d, still, "")
}
