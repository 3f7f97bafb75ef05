package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/natter-chat/natter/protocol"
)

// call sends req and decodes a reply of type want into out (nil: discard).
func (c *Client) call(ctx context.Context, req protocol.Request, want string, out any) error {
	raw, err := c.Request(ctx, req)
	if err != nil {
		return err
	}
	var h frameHead
	_ = json.Unmarshal(raw, &h) // Request already checked it is an object
	if h.Type != want {
		return fmt.Errorf("client: %s answered %q, want %q: %s", req.Type, h.Type, want, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("client: decode %s reply: %w", want, err)
	}
	return nil
}

// Send sends a message with body (any JSON object; json.RawMessage is sent
// as is) and returns the ack. An empty clientID gets a random UUIDv4.
func (c *Client) Send(ctx context.Context, conv string, clientID string, body any) (*protocol.Ack, error) {
	return c.SendKind(ctx, conv, clientID, protocol.KindMessage, 0, body)
}

// Resend sends again a message already sent with clientID, marked as a
// resend ("resend": true): the server then finds its original over the
// whole de-dup window (10 minutes by default), where an unmarked repeat
// is caught only within JetStream's short window (2 minutes by default).
// Use it for every attempt after the first; Session.Send does.
func (c *Client) Resend(ctx context.Context, conv string, clientID string, body any) (*protocol.Ack, error) {
	return c.send(ctx, conv, clientID, protocol.KindMessage, 0, body, true)
}

// SendKind sends a message of kind ("" for a plain message, or
// protocol.KindEdit, KindDelete, KindReaction) referring to seq ref (0: no
// ref) and returns the ack. An empty clientID gets a random UUIDv4.
func (c *Client) SendKind(ctx context.Context, conv, clientID, kind string, ref uint64, body any) (*protocol.Ack, error) {
	return c.send(ctx, conv, clientID, kind, ref, body, false)
}

// send is SendKind, marked as a resend or not.
func (c *Client) send(ctx context.Context, conv, clientID, kind string, ref uint64, body any, resend bool) (*protocol.Ack, error) {
	return c.sendRequest(ctx, protocol.Request{Type: protocol.TypeSend, Conv: conv, ClientID: clientID, Kind: kind, Ref: int64(ref), Resend: resend}, body)
}

// sendRequest sends req, a send, with body and returns the ack. An empty
// client_id gets a random UUIDv4.
func (c *Client) sendRequest(ctx context.Context, req protocol.Request, body any) (*protocol.Ack, error) {
	raw, ok := body.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("client: encode body: %w", err)
		}
	}
	if req.ClientID == "" {
		req.ClientID = NewClientID()
	}
	req.Body = raw
	ack := new(protocol.Ack)
	if err := c.call(ctx, req, protocol.TypeAck, ack); err != nil {
		return nil, err
	}
	return ack, nil
}

// CreateDirect returns the direct conversation with other, creating it the
// first time.
func (c *Client) CreateDirect(ctx context.Context, other string) (*protocol.Conversation, error) {
	return c.create(ctx, protocol.Request{Type: protocol.TypeCreate, Kind: protocol.ConversationDirect, Members: []string{other}})
}

// CreateGroup creates a group titled title with members; the caller becomes
// its owner.
func (c *Client) CreateGroup(ctx context.Context, title string, members ...string) (*protocol.Conversation, error) {
	return c.create(ctx, protocol.Request{Type: protocol.TypeCreate, Kind: protocol.ConversationGroup, Title: title, Members: members})
}

func (c *Client) create(ctx context.Context, req protocol.Request) (*protocol.Conversation, error) {
	var f protocol.ConversationFrame
	if err := c.call(ctx, req, protocol.TypeConversation, &f); err != nil {
		return nil, err
	}
	if f.Conversation == nil {
		return nil, fmt.Errorf("client: conversation reply without a conversation")
	}
	return f.Conversation, nil
}

// AddMembers adds users to group conv ("user" for one, "users" for more).
func (c *Client) AddMembers(ctx context.Context, conv string, users ...string) error {
	req := protocol.Request{Type: protocol.TypeAddMember, Conv: conv}
	if len(users) == 1 {
		req.User = users[0]
	} else {
		req.Users = users
	}
	return c.call(ctx, req, protocol.TypeOK, nil)
}

// RemoveMember removes user from group conv (owner only). Removing a user
// who is invited and has not accepted withdraws the invitation.
func (c *Client) RemoveMember(ctx context.Context, conv, user string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeRemoveMember, Conv: conv, User: user}, protocol.TypeOK, nil)
}

// Leave removes the caller from conv. Leaving a group the caller is
// invited to declines the invitation; leaving a direct conversation hides
// it.
func (c *Client) Leave(ctx context.Context, conv string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeLeave, Conv: conv}, protocol.TypeOK, nil)
}

// Members returns one page of conv's members, ordered by user id, after the
// user id after ("" from the start); limit ≤ 0 uses the server default.
func (c *Client) Members(ctx context.Context, conv, after string, limit int) (*protocol.MembersFrame, error) {
	req := protocol.Request{Type: protocol.TypeMembers, Conv: conv, Limit: limit}
	if after != "" {
		req.After, _ = json.Marshal(after)
	}
	f := new(protocol.MembersFrame)
	if err := c.call(ctx, req, protocol.TypeMembers, f); err != nil {
		return nil, err
	}
	return f, nil
}

// Conversations lists all the caller's conversations, asking for them page
// by page: a user in many large groups cannot get a reply too large for
// the connection.
func (c *Client) Conversations(ctx context.Context) ([]*protocol.Conversation, error) {
	var all []*protocol.Conversation
	after := ""
	for {
		f, err := c.ConversationsPage(ctx, after, 0)
		if err != nil {
			return nil, err
		}
		all = append(all, f.Conversations...)
		if !f.More || f.Next == "" {
			return all, nil
		}
		if f.Next == after {
			return nil, fmt.Errorf("client: conversations answered the cursor it was given as next")
		}
		after = f.Next
	}
}

// ConversationsPage returns one page of the caller's conversations: the
// first when after is "", else the one the Next of the previous page
// names. limit ≤ 0 uses the server default (100). More says whether
// another page follows.
func (c *Client) ConversationsPage(ctx context.Context, after string, limit int) (*protocol.ConversationsFrame, error) {
	req := protocol.Request{Type: protocol.TypeConversations, Limit: limit}
	if after != "" {
		req.After, _ = json.Marshal(after)
	}
	f := new(protocol.ConversationsFrame)
	if err := c.call(ctx, req, protocol.TypeConversations, f); err != nil {
		return nil, err
	}
	return f, nil
}

// Sync returns up to limit messages of conv with seq > after, ascending;
// limit ≤ 0 uses the server default.
func (c *Client) Sync(ctx context.Context, conv string, after uint64, limit int) (*protocol.MessagesFrame, error) {
	req := protocol.Request{Type: protocol.TypeSync, Conv: conv, Limit: limit, After: strconv.AppendUint(nil, after, 10)}
	return c.messages(ctx, req)
}

// History returns the newest limit messages of conv with seq < before,
// ascending; before 0 means from the newest.
func (c *Client) History(ctx context.Context, conv string, before uint64, limit int) (*protocol.MessagesFrame, error) {
	req := protocol.Request{Type: protocol.TypeHistory, Conv: conv, Limit: limit}
	if before > 0 {
		b := int64(before)
		req.Before = &b
	}
	return c.messages(ctx, req)
}

func (c *Client) messages(ctx context.Context, req protocol.Request) (*protocol.MessagesFrame, error) {
	f := new(protocol.MessagesFrame)
	if err := c.call(ctx, req, protocol.TypeMessages, f); err != nil {
		return nil, err
	}
	dropExpired(f)
	c.delivered.noteMessages(f)
	return f, nil
}

// Typing tells conv's other members the caller is typing. It is
// fire-and-forget: no id, no reply awaited.
func (c *Client) Typing(ctx context.Context, conv string) error {
	b, _ := json.Marshal(protocol.Request{Type: protocol.TypeTyping, Conv: conv})
	return c.WriteRaw(ctx, b)
}

// MarkRead moves the caller's read marker in conv to seq and waits for ok.
func (c *Client) MarkRead(ctx context.Context, conv string, seq uint64) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeRead, Conv: conv, Seq: int64(seq)}, protocol.TypeOK, nil)
}

// Ping sends a ping with an id and waits for the pong with that id.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypePing}, protocol.TypePong, nil)
}

// NewClientID returns a random UUIDv4 string, the default client_id of Send.
func NewClientID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}
