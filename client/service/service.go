// Package service is the Go client of the chat service API
// (docs/services.md): an internal service connects with the credentials
// `natter service add` wrote and creates conversations, changes members,
// posts and reads as one of its registered senders. Post is idempotent:
// it retries with the same client id, which the server de-duplicates.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Error is an error answered by the chat service: Code is its
// Nats-Service-Error-Code (protocol.ServiceCode*), Description its
// Nats-Service-Error.
type Error struct {
	Code, Description string
}

func (e *Error) Error() string { return "chat service: " + e.Code + " " + e.Description }

// ErrNoService says the credentials name no service user (svc-<name>).
var ErrNoService = errors.New("service: the credentials name no service user")

// Client calls the chat service API as one service.
type Client struct {
	nc      *nats.Conn
	name    string
	timeout time.Duration
}

// Connect connects with credentials: a NATS URL list with the service's
// user and password, or the path of the file `natter service add` wrote
// holding one. opts are added to the client's own (name, inbox prefix).
func Connect(credentials string, opts ...nats.Option) (*Client, error) {
	urls := strings.TrimSpace(credentials)
	if !strings.Contains(urls, "://") {
		data, err := os.ReadFile(urls)
		if err != nil {
			return nil, fmt.Errorf("service: read credentials: %w", err)
		}
		urls = strings.TrimSpace(string(data))
	}
	first, _, _ := strings.Cut(urls, ",")
	u, err := url.Parse(first)
	if err != nil || u.User == nil {
		return nil, ErrNoService
	}
	name, ok := strings.CutPrefix(u.User.Username(), schema.ServiceUser(""))
	if !ok || !schema.ValidServiceName(name) {
		return nil, ErrNoService
	}
	nc, err := nats.Connect(urls, append([]nats.Option{nats.Name(schema.ServiceUser(name)),
		nats.CustomInboxPrefix(schema.ServiceInbox(name)), nats.MaxReconnects(-1),
		// A restarted node installs the service users a moment after it
		// accepts connections (it reads them from the registry): keep
		// reconnecting through the refusals of that moment.
		nats.IgnoreAuthErrorAbort()}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("service: connect: %w", err)
	}
	return &Client{nc: nc, name: name, timeout: 10 * time.Second}, nil
}

// Name is the service's name.
func (c *Client) Name() string { return c.name }

// Close closes the connection.
func (c *Client) Close() { c.nc.Close() }

// call sends one request and decodes the reply or the micro error.
func (c *Client) call(ctx context.Context, endpoint string, req *protocol.ServiceRequest) (*protocol.ServiceReply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	msg, err := c.nc.RequestWithContext(ctx, schema.ServiceAPI(c.name, endpoint), data)
	if err != nil {
		return nil, fmt.Errorf("service: %s: %w", endpoint, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return nil, &Error{Code: code, Description: msg.Header.Get(micro.ErrorHeader)}
	}
	var reply protocol.ServiceReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return nil, fmt.Errorf("service: %s: %w", endpoint, err)
	}
	return &reply, nil
}

// Conversation is a conversation as the API answers it.
type Conversation struct {
	ID, Kind string
	Members  []string
	// Added and Invited answer AddMember.
	Added, Invited []string
}

func conversation(r *protocol.ServiceReply) *Conversation {
	return &Conversation{ID: r.Conv, Kind: r.Kind, Members: r.Members, Added: r.Added, Invited: r.Invited}
}

// CreateConversation creates a conversation owned by as: kind
// protocol.ConversationDirect with one other member, or
// protocol.ConversationGroup with a title.
func (c *Client) CreateConversation(ctx context.Context, as, kind, title string, members ...string) (*Conversation, error) {
	r, err := c.call(ctx, schema.EndpointCreate, &protocol.ServiceRequest{As: as, Kind: kind, Title: title, Members: members})
	if err != nil {
		return nil, err
	}
	return conversation(r), nil
}

// AddMember adds users to group conv, as as.
func (c *Client) AddMember(ctx context.Context, as, conv string, users ...string) (*Conversation, error) {
	r, err := c.call(ctx, schema.EndpointAddMember, &protocol.ServiceRequest{As: as, Conv: conv, Users: users})
	if err != nil {
		return nil, err
	}
	return conversation(r), nil
}

// RemoveMember removes user from group conv, as as.
func (c *Client) RemoveMember(ctx context.Context, as, conv, user string) (*Conversation, error) {
	r, err := c.call(ctx, schema.EndpointRemoveMember, &protocol.ServiceRequest{As: as, Conv: conv, User: user})
	if err != nil {
		return nil, err
	}
	return conversation(r), nil
}

// Posted is a stored post: its seq and time; Duplicate when the client id
// had been posted before (Seq and TS are the original's).
type Posted struct {
	Seq       uint64
	TS        string
	Duplicate bool
}

// Post posts body (a JSON object) in conv as as. clientID makes it
// idempotent: Post retries a request that got no answer, or an
// "unavailable" one, with the same id until ctx ends, and every attempt
// stores the message once.
func (c *Client) Post(ctx context.Context, as, conv, clientID string, body json.RawMessage) (*Posted, error) {
	return c.post(ctx, &protocol.ServiceRequest{As: as, Conv: conv, ClientID: clientID, Body: body})
}

// Edit replaces the body of message ref, which as sent; idempotent like
// Post.
func (c *Client) Edit(ctx context.Context, as, conv, clientID string, ref uint64, body json.RawMessage) (*Posted, error) {
	return c.post(ctx, &protocol.ServiceRequest{As: as, Conv: conv, ClientID: clientID, Kind: protocol.KindEdit, Ref: ref, Body: body})
}

// Delete deletes message ref, which as sent; idempotent like Post.
func (c *Client) Delete(ctx context.Context, as, conv, clientID string, ref uint64) (*Posted, error) {
	return c.post(ctx, &protocol.ServiceRequest{As: as, Conv: conv, ClientID: clientID, Kind: protocol.KindDelete, Ref: ref, Body: json.RawMessage(`{}`)})
}

// React reacts to message ref (body as a client's reaction, e.g.
// {"emoji":"👍"}); idempotent like Post.
func (c *Client) React(ctx context.Context, as, conv, clientID string, ref uint64, body json.RawMessage) (*Posted, error) {
	return c.post(ctx, &protocol.ServiceRequest{As: as, Conv: conv, ClientID: clientID, Kind: protocol.KindReaction, Ref: ref, Body: body})
}

func (c *Client) post(ctx context.Context, req *protocol.ServiceRequest) (*Posted, error) {
	wait := 100 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := c.call(actx, schema.EndpointPost, req)
		cancel()
		if err == nil {
			return &Posted{Seq: r.Seq, TS: r.TS, Duplicate: r.Duplicate}, nil
		}
		var se *Error
		retry := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
			(errors.As(err, &se) && se.Code == protocol.ServiceCodeUnavailable)
		if !retry || ctx.Err() != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// Page is a page of messages; More says there are more in its direction.
type Page struct {
	Messages []*protocol.Message
	More     bool
}

// History pages backwards from before (0: the newest), as as, a member.
func (c *Client) History(ctx context.Context, as, conv string, before uint64, limit int) (*Page, error) {
	r, err := c.call(ctx, schema.EndpointHistory, &protocol.ServiceRequest{As: as, Conv: conv, Before: before, Limit: limit})
	if err != nil {
		return nil, err
	}
	return &Page{Messages: r.Messages, More: r.More}, nil
}

// Sync pages forwards after seq after, as as, a member.
func (c *Client) Sync(ctx context.Context, as, conv string, after uint64, limit int) (*Page, error) {
	r, err := c.call(ctx, schema.EndpointSync, &protocol.ServiceRequest{As: as, Conv: conv, After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	return &Page{Messages: r.Messages, More: r.More}, nil
}

// Conversations lists the conversation ids of as.
func (c *Client) Conversations(ctx context.Context, as string) ([]string, error) {
	r, err := c.call(ctx, schema.EndpointConversations, &protocol.ServiceRequest{As: as})
	if err != nil {
		return nil, err
	}
	return r.Conversations, nil
}
