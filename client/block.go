package client

import (
	"context"

	"github.com/natter-chat/natter/protocol"
)

// Block blocks user and returns the caller's block list after it: user
// can no longer open a direct conversation with the caller or add them to
// a group, nor see their presence, typing or read state, and the caller
// gets no live pushes of user's messages.
func (c *Client) Block(ctx context.Context, user string) ([]string, error) {
	return c.blockCall(ctx, protocol.Request{Type: protocol.TypeBlock, User: user})
}

// Unblock lifts a block and returns the caller's block list after it.
func (c *Client) Unblock(ctx context.Context, user string) ([]string, error) {
	return c.blockCall(ctx, protocol.Request{Type: protocol.TypeUnblock, User: user})
}

// Blocked returns the users the caller blocked, sorted.
func (c *Client) Blocked(ctx context.Context) ([]string, error) {
	return c.blockCall(ctx, protocol.Request{Type: protocol.TypeBlocked})
}

func (c *Client) blockCall(ctx context.Context, req protocol.Request) ([]string, error) {
	var f protocol.BlockedFrame
	if err := c.call(ctx, req, protocol.TypeBlocked, &f); err != nil {
		return nil, err
	}
	return f.Users, nil
}
