package fanout

import (
	"context"
	"encoding/json"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// pushConversationStates is pushConversation for a document that renders
// differently per user (a message request, invitations, roles in a
// group): one frame per consent state and role, each to the users in it.
func (f *Fanout) pushConversationStates(d *conversation.Doc, c *protocol.Conversation, users []string, origin string) error {
	type view struct{ state, role string }
	byView := make(map[view][]string, 3)
	for _, u := range users {
		v := view{d.StateFor(u), d.Role(u)}
		byView[v] = append(byView[v], schema.User(u, schema.EventConversation))
	}
	for v, subjects := range byView {
		cc := *c
		cc.State, cc.Role = v.state, v.role
		frame, _ := json.Marshal(protocol.ConversationFrame{Type: protocol.TypeConversation, Push: true, Conversation: &cc})
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

// pushInvitedList tells the members of the group d, but those of except
// (they got the conversation already), that its invited list changed:
// changed names the users invited or no longer invited, none for no
// change. One conversation push per role (a member of a group has no
// consent state of it), on every connection: the acting one's reply does
// not carry the list.
func (f *Fanout) pushInvitedList(ctx context.Context, d *conversation.Doc, changed, except []string) error {
	if len(changed) == 0 || d.Kind != protocol.ConversationGroup {
		return nil
	}
	c := d.Protocol(f.cfg.MembersInline)
	last, err := f.last.Last(ctx, d.Conv)
	if err != nil {
		return err
	}
	c.LastSeq = last
	skip := make(map[string]bool, len(except))
	for _, u := range except {
		skip[u] = true
	}
	users := make([]string, 0, len(d.Members))
	for _, u := range d.Members {
		if !skip[u] {
			users = append(users, u)
		}
	}
	// One frame per role (group.go).
	return f.pushConversationStates(d, c, users, "")
}
