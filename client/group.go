package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/natter-chat/natter/protocol"
)

// Group settings, roles and moderation (docs/protocol.md, "Group settings,
// roles and moderation").

// GroupUpdate is what Update changes; nil fields stay as they are. An
// empty Topic or Avatar clears it; Title cannot be emptied.
type GroupUpdate struct {
	Title, Topic, Avatar *string
	ReadOnly             *bool
	// OnlyAdminsAdd lets only the owner and admins add members (true) or
	// every member again (false).
	OnlyAdminsAdd *bool
	// TTL is the disappearing-messages setting in seconds (SetTTL).
	TTL *int64
}

// Update changes group conv's settings (owner and admins) and returns the
// group as it is now. Each change becomes an event item in the group.
func (c *Client) Update(ctx context.Context, conv string, u GroupUpdate) (*protocol.Conversation, error) {
	req := protocol.Request{Type: protocol.TypeUpdate, Conv: conv, Topic: u.Topic, Avatar: u.Avatar, ReadOnly: u.ReadOnly, OnlyAdminsAdd: u.OnlyAdminsAdd, TTL: u.TTL}
	if u.Title != nil {
		if *u.Title == "" {
			return nil, fmt.Errorf("client: a group's title cannot be emptied")
		}
		req.Title = *u.Title
	}
	return c.create(ctx, req)
}

// SetRole makes user an admin (protocol.RoleAdmin) or a plain member
// (protocol.RoleMember) of group conv: only the owner may.
func (c *Client) SetRole(ctx context.Context, conv, user, role string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeSetRole, Conv: conv, User: user, Role: role}, protocol.TypeOK, nil)
}

// Transfer hands group conv to user, a member: only the owner may, and
// becomes an admin.
func (c *Client) Transfer(ctx context.Context, conv, user string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeTransfer, Conv: conv, User: user}, protocol.TypeOK, nil)
}

// Ban removes user from group conv (or withdraws their invitation) and
// bans them: nobody can add or invite them again until an admin unbans
// them. The owner bans anyone, admins plain members.
func (c *Client) Ban(ctx context.Context, conv, user string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeRemoveMember, Conv: conv, User: user, Ban: true}, protocol.TypeOK, nil)
}

// Unban lifts user's ban from group conv (owner and admins).
func (c *Client) Unban(ctx context.Context, conv, user string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeUnban, Conv: conv, User: user}, protocol.TypeOK, nil)
}

// Banned returns the users banned from group conv, sorted (owner and
// admins).
func (c *Client) Banned(ctx context.Context, conv string) ([]string, error) {
	var f protocol.BannedFrame
	if err := c.call(ctx, protocol.Request{Type: protocol.TypeBanned, Conv: conv}, protocol.TypeBanned, &f); err != nil {
		return nil, err
	}
	return f.Users, nil
}

// DeleteMessage deletes message seq of conv: the caller's own, or, for the
// owner or an admin of a group, anyone's (a moderator delete).
func (c *Client) DeleteMessage(ctx context.Context, conv string, seq uint64) (*protocol.Ack, error) {
	return c.SendKind(ctx, conv, "", protocol.KindDelete, seq, json.RawMessage(`{}`))
}

// GroupEvent decodes the body of m, a protocol.KindEvent item.
func GroupEvent(m *protocol.Message) (*protocol.GroupEvent, error) {
	if m.Kind != protocol.KindEvent {
		return nil, fmt.Errorf("client: message %d is not an event but %q", m.Seq, m.Kind)
	}
	ev := new(protocol.GroupEvent)
	if err := json.Unmarshal(m.Body, ev); err != nil {
		return nil, fmt.Errorf("client: decode event %d: %w", m.Seq, err)
	}
	return ev, nil
}
