package client

import (
	"context"
	"fmt"

	"github.com/natter-chat/natter/protocol"
)

// Consent: message requests, invitations, hiding and who may add the
// caller (docs/protocol.md, "Consent").

// Accept accepts the message request of conv or the invitation into it
// and returns the conversation as the caller now sees it.
func (c *Client) Accept(ctx context.Context, conv string) (*protocol.Conversation, error) {
	return c.create(ctx, protocol.Request{Type: protocol.TypeAccept, Conv: conv})
}

// Decline declines the message request of conv or the invitation into it:
// it disappears for the caller, and the requester's later messages do not
// bring it back.
func (c *Client) Decline(ctx context.Context, conv string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeDecline, Conv: conv}, protocol.TypeOK, nil)
}

// Hide takes conv off the caller's conversations list until a new message
// arrives in it.
func (c *Client) Hide(ctx context.Context, conv string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeHide, Conv: conv}, protocol.TypeOK, nil)
}

// AddOrInvite is AddMembers that returns the users who were invited rather
// than added: their add_policy is nobody.
func (c *Client) AddOrInvite(ctx context.Context, conv string, users ...string) ([]string, error) {
	req := protocol.Request{Type: protocol.TypeAddMember, Conv: conv, Users: users}
	var f protocol.AddedOK
	if err := c.call(ctx, req, protocol.TypeOK, &f); err != nil {
		return nil, err
	}
	return f.Invited, nil
}

// Settings returns the caller's settings.
func (c *Client) Settings(ctx context.Context) (*protocol.Settings, error) {
	return c.settings(ctx, "")
}

// SetAddPolicy sets who may add the caller to groups:
// protocol.AddPolicyEveryone, AddPolicyContacts or AddPolicyNobody.
func (c *Client) SetAddPolicy(ctx context.Context, policy string) (*protocol.Settings, error) {
	if policy == "" {
		return nil, fmt.Errorf("client: an add_policy is required")
	}
	return c.settings(ctx, policy)
}

func (c *Client) settings(ctx context.Context, policy string) (*protocol.Settings, error) {
	f := new(protocol.Settings)
	if err := c.call(ctx, protocol.Request{Type: protocol.TypeSettings, AddPolicy: policy}, protocol.TypeSettings, f); err != nil {
		return nil, err
	}
	return f, nil
}
