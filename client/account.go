package client

import (
	"context"

	"github.com/natter-chat/natter/protocol"
)

// DeleteAccount erases the caller's account (delete_account): the server
// records the erasure, answers, and closes every connection of the user,
// this one included (close 4001, "account erased"); their tokens no
// longer log in. It removes them from every conversation and makes every
// message they sent a tombstone, in the background (docs/protocol.md
// "Account: delete and export"). It cannot be undone.
func (c *Client) DeleteAccount(ctx context.Context) (*protocol.AccountDeleted, error) {
	req := protocol.Request{Type: protocol.TypeDeleteAccount, User: c.welcome.User}
	var res protocol.AccountDeleted
	if err := c.call(ctx, req, protocol.TypeAccountDeleted, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Export asks for the caller's archive (export): their conversations
// (metadata and members), their own messages and their attachments'
// URLs, as NDJSON. The answer carries a short-lived signed URL of it
// (File.URL, valid until File.Expires); Fetch downloads it.
func (c *Client) Export(ctx context.Context) (*protocol.ExportReady, error) {
	var res protocol.ExportReady
	if err := c.call(ctx, protocol.Request{Type: protocol.TypeExport}, protocol.TypeExportReady, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// DeletedPeer is the other member of the direct conversation c when that
// account was erased (c.Erased), or "" when there is none. Such a
// conversation keeps its history, but nobody can send in it any more:
// apps show "deleted account" instead of the id.
func DeletedPeer(c *protocol.Conversation, me string) string {
	if c == nil || c.Kind != protocol.ConversationDirect {
		return ""
	}
	for _, u := range c.Erased {
		if u != me {
			return u
		}
	}
	return ""
}
