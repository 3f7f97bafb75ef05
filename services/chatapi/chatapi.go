// Package chatapi is the chat service API: a NATS micro service named
// "chat" on chat.api.svc.<service>.<endpoint> through which internal
// services create conversations, change members, post and read, each as
// one of the senders the service registry (package services) gives it.
// The <service> token is the caller's identity: its NATS user may request
// its own prefix only (schema.ServicePermissions), so it cannot be forged.
// A service acting as a sender follows the rules a user connected as that
// sender follows: membership to post and read, the conversation store's
// rules (owners, consent) to create and change members.
package chatapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Pages reads messages: the history package's Reader or Remote.
type Pages interface {
	After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error)
	Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error)
	Get(ctx context.Context, conv string, seq uint64) (*protocol.Message, error)
}

// Senders says which senders a service may act as: services.Index.
type Senders interface {
	Allowed(service, sender string) bool
}

// Config configures the API. Zero fields get defaults.
type Config struct {
	// Timeout bounds one request's work (10 s).
	Timeout time.Duration
	// PublishRetry bounds the retries of a post while CHAT has no leader
	// (10 s).
	PublishRetry time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger (discards when nil).
	Logger *slog.Logger
	// ErrNotFound is what Pages.Get returns for a missing message
	// (history.ErrNotFound).
	ErrNotFound error
}

// Stats counts what the API refused.
type Stats struct {
	// Refused are requests refused because the service may not act as the
	// sender it named.
	Refused atomic.Uint64
}

// API is the running chat service.
type API struct {
	cfg     Config
	js      jetstream.JetStream
	convs   *conversation.Store
	pages   Pages
	senders Senders
	svc     micro.Service
	stats   Stats
	// layout is the message streams' layout, read on the first publish.
	layout atomic.Pointer[schema.Layout]
}

// Start serves the API on nc (a connection allowed to subscribe to
// schema.ServiceAPIAll and the micro discovery subjects, and to answer):
// one queue group over every instance.
func Start(nc *nats.Conn, js jetstream.JetStream, convs *conversation.Store, pages Pages, senders Senders, cfg Config) (*API, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.PublishRetry <= 0 {
		cfg.PublishRetry = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{cfg: cfg, js: js, convs: convs, pages: pages, senders: senders}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        schema.ChatService,
		Version:     "1.0.0",
		Description: "Natter chat API for internal services: " + schema.ServiceAPIGroup + ".<service>.<endpoint>",
	})
	if err != nil {
		return nil, fmt.Errorf("start chat API: %w", err)
	}
	a.svc = svc
	handlers := map[string]func(context.Context, string, *protocol.ServiceRequest) (*protocol.ServiceReply, error){
		schema.EndpointCreate:        a.create,
		schema.EndpointAddMember:     a.addMember,
		schema.EndpointRemoveMember:  a.removeMember,
		schema.EndpointPost:          a.post,
		schema.EndpointHistory:       a.history,
		schema.EndpointSync:          a.sync,
		schema.EndpointConversations: a.conversations,
	}
	for _, ep := range schema.ServiceEndpoints {
		if err := svc.AddEndpoint(ep, a.handler(handlers[ep]), micro.WithEndpointSubject(schema.ServiceAPIEndpoint(ep))); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("start chat API: endpoint %s: %w", ep, err)
		}
	}
	return a, nil
}

// Stop stops serving; in-flight requests finish.
func (a *API) Stop() error { return a.svc.Stop() }

// Stats returns the API's counters.
func (a *API) Stats() *Stats { return &a.stats }

// apiError is an error answered with a micro error code.
type apiError struct{ code, msg string }

func (e *apiError) Error() string { return e.code + " " + e.msg }

func errorf(code, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (a *API) handler(fn func(context.Context, string, *protocol.ServiceRequest) (*protocol.ServiceReply, error)) micro.Handler {
	return micro.HandlerFunc(func(r micro.Request) {
		service := schema.ServiceFromSubject(r.Subject())
		var req protocol.ServiceRequest
		var err error
		var reply *protocol.ServiceReply
		switch {
		case service == "":
			err = errorf(protocol.ServiceCodeBadRequest, "the subject names no valid service")
		case json.Unmarshal(r.Data(), &req) != nil:
			err = errorf(protocol.ServiceCodeBadRequest, "the request must be a JSON object")
		case !protocol.ValidID(req.As):
			err = errorf(protocol.ServiceCodeBadRequest, "as must name a sender id")
		case !a.senders.Allowed(service, req.As):
			a.stats.Refused.Add(1)
			a.cfg.Logger.Warn("Service refused: it may not act as this sender.", "service", service, "sender", req.As, "endpoint", r.Subject())
			err = errorf(protocol.ServiceCodeForbidden, "service %s may not act as %s", service, req.As)
		default:
			ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeout)
			reply, err = fn(ctx, service, &req)
			cancel()
		}
		if err != nil {
			code, msg := a.mapError(err)
			_ = r.Error(code, msg, nil)
			return
		}
		_ = r.RespondJSON(reply)
	})
}

// mapError turns an error into a micro error code and description.
func (a *API) mapError(err error) (string, string) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.code, ae.msg
	case errors.Is(err, conversation.ErrForbidden), errors.Is(err, conversation.ErrRefused):
		return protocol.ServiceCodeForbidden, err.Error()
	case errors.Is(err, conversation.ErrBadRequest):
		return protocol.ServiceCodeBadRequest, err.Error()
	case errors.Is(err, conversation.ErrNotFound):
		return protocol.ServiceCodeNotFound, err.Error()
	case errors.Is(err, conversation.ErrConflict):
		return protocol.ServiceCodeConflict, err.Error()
	case errors.Is(err, conversation.ErrTooLarge):
		return protocol.ServiceCodeTooLarge, err.Error()
	case errors.Is(err, conversation.ErrRateLimited):
		return protocol.ServiceCodeRateLimited, err.Error()
	case a.cfg.ErrNotFound != nil && errors.Is(err, a.cfg.ErrNotFound):
		return protocol.ServiceCodeNotFound, "no such message"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders):
		return protocol.ServiceCodeUnavailable, "unavailable, try again"
	}
	a.cfg.Logger.Error("Chat API request failed.", "err", err)
	return protocol.ServiceCodeInternal, "internal error"
}

func actor(req *protocol.ServiceRequest) conversation.Actor {
	return conversation.Actor{User: req.As}
}

func validIDs(ids []string) bool {
	for _, id := range ids {
		if !protocol.ValidID(id) {
			return false
		}
	}
	return true
}

func badConv(req *protocol.ServiceRequest) error {
	if !protocol.ValidID(req.Conv) {
		return errorf(protocol.ServiceCodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	return nil
}

func docReply(d *conversation.Doc) *protocol.ServiceReply {
	return &protocol.ServiceReply{Conv: d.Conv, Kind: d.Kind, Members: d.SortedMembers()}
}

func (a *API) create(ctx context.Context, _ string, req *protocol.ServiceRequest) (*protocol.ServiceReply, error) {
	if !validIDs(req.Members) || len(req.Members) > protocol.MaxUsersPerRequest {
		return nil, errorf(protocol.ServiceCodeBadRequest, "members must be at most %d valid user ids", protocol.MaxUsersPerRequest)
	}
	var others []string
	for _, u := range req.Members {
		if u != req.As {
			others = append(others, u)
		}
	}
	switch req.Kind {
	case protocol.ConversationDirect:
		if len(others) != 1 {
			return nil, errorf(protocol.ServiceCodeBadRequest, "a direct conversation names exactly one other user")
		}
		d, _, err := a.convs.CreateDirect(ctx, actor(req), others[0])
		if err != nil {
			return nil, err
		}
		return docReply(d), nil
	case protocol.ConversationGroup:
		d, err := a.convs.CreateGroup(ctx, actor(req), req.Title, others)
		if err != nil {
			return nil, err
		}
		return docReply(d), nil
	}
	return nil, errorf(protocol.ServiceCodeBadRequest, `kind must be "direct" or "group"`)
}

func (a *API) addMember(ctx context.Context, _ string, req *protocol.ServiceRequest) (*protocol.ServiceReply, error) {
	if err := badConv(req); err != nil {
		return nil, err
	}
	if len(req.Users) == 0 || !validIDs(req.Users) {
		return nil, errorf(protocol.ServiceCodeBadRequest, "users must name valid user ids")
	}
	d, added, invited, err := a.convs.AddOrInvite(ctx, actor(req), req.Conv, req.Users)
	if err != nil {
		return nil, err
	}
	r := docReply(d)
	r.Added, r.Invited = added, invited
	return r, nil
}

func (a *API) removeMember(ctx context.Context, _ string, req *protocol.ServiceRequest) (*protocol.ServiceReply, error) {
	if err := badConv(req); err != nil {
		return nil, err
	}
	if !protocol.ValidID(req.User) {
		return nil, errorf(protocol.ServiceCodeBadRequest, "user must be a valid user id")
	}
	d, err := a.convs.RemoveMember(ctx, actor(req), req.Conv, req.User)
	if err != nil {
		return nil, err
	}
	return docReply(d), nil
}

// member refuses a sender that is not an accepted member of conv.
func (a *API) member(ctx context.Context, req *protocol.ServiceRequest) (conversation.MemberView, error) {
	v, err := a.convs.MemberView(ctx, req.Conv, req.As)
	if err != nil {
		return v, err
	}
	if !v.Member || v.Pending {
		return v, errorf(protocol.ServiceCodeForbidden, "%s is not a member of %s", req.As, req.Conv)
	}
	return v, nil
}

// moderates reports whether req.As may delete others' messages in req.Conv:
// the group's owner or an admin (a moderator delete), as in the gateway.
func (a *API) moderates(ctx context.Context, req *protocol.ServiceRequest, kind string) bool {
	if kind != protocol.KindDelete {
		return false
	}
	d, err := a.convs.Get(ctx, req.Conv)
	return err == nil && d.IsAdmin(req.As)
}

func limit(n int) int {
	if n <= 0 {
		return protocol.DefaultLimit
	}
	return min(n, protocol.MaxLimit)
}

func (a *API) history(ctx context.Context, _ string, req *protocol.ServiceRequest) (*protocol.ServiceReply, error) {
	if err := badConv(req); err != nil {
		return nil, err
	}
	if _, err := a.member(ctx, req); err != nil {
		return nil, err
	}
	msgs, more, err := a.pages.Before(ctx, req.Conv, req.Before, limit(req.Limit))
	if err != nil {
		return nil, err
	}
	return &protocol.ServiceReply{Conv: req.Conv, Messages: msgs, More: more}, nil
}

func (a *API) sync(ctx context.Context, _ string, req *protocol.ServiceRequest) (*protocol.ServiceReply, error) {
	if err := badConv(req); err != nil {
		return nil, err
	}
	if _, err := a.member(ctx, req); err != nil {
		return nil, err
	}
	msgs, more, err := a.pages.After(ctx, req.Conv, req.After, limit(req.Limit))
	if err != nil {
		return nil, err
	}
	return &protocol.ServiceReply{Conv: req.Conv, Messages: msgs, More: more}, nil
}

func (a *API) conversations(ctx context.Context, _ string, req *protocol.ServiceRequest) (*protocol.ServiceReply, error) {
	ids, err := a.convs.UserConversations(ctx, req.As)
	if err != nil {
		return nil, err
	}
	return &protocol.ServiceReply{Conversations: ids}, nil
}

// MsgID is the Nats-Msg-Id of a post: the gateway's for a send of the same
// sender, conversation and client id, so a post and a client's send share
// one de-duplication space.
func MsgID(sender, conv, clientID string) string { return sender + ":" + conv + ":" + clientID }

func (a *API) post(ctx context.Context, _ string, req *protocol.ServiceRequest) (*protocol.ServiceReply, error) {
	if err := badConv(req); err != nil {
		return nil, err
	}
	if !protocol.ValidClientID(req.ClientID) {
		return nil, errorf(protocol.ServiceCodeBadRequest, "client_id is required: 1 to %d printable ASCII characters", protocol.MaxClientIDLen)
	}
	if !protocol.IsObject(req.Body) {
		return nil, errorf(protocol.ServiceCodeBadRequest, "body must be a JSON object")
	}
	if len(req.Body) > protocol.MaxBodyBytes {
		return nil, errorf(protocol.ServiceCodeTooLarge, "body is %d bytes; at most %d", len(req.Body), protocol.MaxBodyBytes)
	}
	env := protocol.Envelope{Sender: req.As, ClientID: req.ClientID, Kind: req.Kind, Ref: req.Ref, Body: req.Body}
	if env.Kind == protocol.KindEvent {
		return nil, errorf(protocol.ServiceCodeBadRequest, "events are written by the server")
	}
	if err := env.Check(); err != nil {
		return nil, errorf(protocol.ServiceCodeBadRequest, "%s", err.Error())
	}
	view, err := a.member(ctx, req)
	if err != nil {
		return nil, err
	}
	if view.Muted {
		// As for a user's send (gateway/group.go): the view is the one
		// the publish is checked against, so a later switch refuses it.
		return nil, errorf(protocol.ServiceCodeForbidden, "the group is read-only: only the owner and admins send")
	}
	if env.Kind != protocol.KindMessage {
		target, err := a.pages.Get(ctx, req.Conv, env.Ref)
		if (err == nil && target.Kind != protocol.KindMessage) || (err != nil && a.cfg.ErrNotFound != nil && errors.Is(err, a.cfg.ErrNotFound)) {
			return nil, errorf(protocol.ServiceCodeNotFound, "ref %d is not a message of this conversation", env.Ref)
		}
		if err != nil {
			return nil, err
		}
		if env.Kind != protocol.KindReaction && target.Sender != req.As && !a.moderates(ctx, req, env.Kind) {
			return nil, errorf(protocol.ServiceCodeForbidden, "only the original sender may %s a message (or, deleting, the group's owner or an admin)", env.Kind)
		}
	}
	env.TS = protocol.FormatTime(a.cfg.Now())
	data, err := json.Marshal(&env)
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: schema.Msg(req.Conv), Header: nats.Header{}, Data: data}
	msg.Header.Set(schema.HeaderMsgID, MsgID(req.As, req.Conv, req.ClientID))
	ack, err := a.publish(ctx, msg, req, view)
	if err != nil {
		return nil, err
	}
	ts, dup := env.TS, ack.Duplicate
	if dup {
		raw, err := a.js.Stream(ctx, ack.Stream)
		if err == nil {
			var m *jetstream.RawStreamMsg
			if m, err = raw.GetMsg(ctx, ack.Sequence); err == nil {
				if orig, derr := protocol.DecodeEnvelope(m.Data); derr == nil && orig.TS != "" {
					ts = orig.TS
				}
			}
		}
		dup = ts != env.TS
	}
	return &protocol.ServiceReply{Conv: req.Conv, Seq: ack.Sequence, TS: ts, Duplicate: dup}, nil
}

// publish stores msg if As is still the member view says it is (the
// membership event's seq as an expected last subject seq, as the gateway
// does), reading the view again when a membership change came between,
// and retrying with the same Nats-Msg-Id while its conversation's message
// stream has no leader.
func (a *API) publish(ctx context.Context, msg *nats.Msg, req *protocol.ServiceRequest, v conversation.MemberView) (*jetstream.PubAck, error) {
	deadline := time.Now().Add(a.cfg.PublishRetry)
	wait := 50 * time.Millisecond
	l := a.layout.Load()
	if l == nil {
		rl, err := schema.ReadLayout(ctx, a.js)
		if err != nil {
			return nil, errorf(protocol.ServiceCodeUnavailable, "the message streams are unavailable: %v", err)
		}
		a.layout.Store(&rl)
		l = &rl
	}
	stream := l.StreamOf(req.Conv)
	for stale := 0; ; {
		msg.Header.Set(schema.HeaderExpectedLastSubjectSeq, strconv.FormatUint(v.Seq, 10))
		msg.Header.Set(schema.HeaderExpectedLastSubjectSeqSubject, v.Subject)
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		ack, err := a.js.PublishMsg(actx, msg, jetstream.WithExpectStream(stream))
		cancel()
		if err == nil {
			return ack, nil
		}
		var apiErr *jetstream.APIError
		if schema.IsWrongLastSeq(err) && stale < 5 {
			stale++
			if v, err = a.member(ctx, req); err != nil {
				return nil, err
			}
			continue
		}
		if errors.As(err, &apiErr) && apiErr.Code != 503 {
			return nil, fmt.Errorf("publish: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, errorf(protocol.ServiceCodeUnavailable, "the message stream is unavailable: %v", err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 500*time.Millisecond)
	}
}
