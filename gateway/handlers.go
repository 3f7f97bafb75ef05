package gateway

import (
	"context"

	"encoding/json"
	"errors"
	"github.com/nats-io/nats.go"
	"slices"
	"sort"
	"strconv"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// handle answers one request of an authenticated session. It returns the
// reply frame, or nil when there is none.
func (sess *session) handle(ctx context.Context, req *protocol.Request) any {
	var resp any
	var err *protocol.Error
	switch req.Type {
	case protocol.TypePing:
		resp = &protocol.OK{Type: protocol.TypePong, ID: req.ID}
	case protocol.TypeHello:
		if req.Device != "" {
			sess.device = req.Device
		}
		sess.welcome(req.ID)
		return nil
	case protocol.TypeCreate:
		resp, err = sess.create(ctx, req)
	case protocol.TypeAddMember:
		resp, err = sess.addMember(ctx, req)
	case protocol.TypeRemoveMember:
		resp, err = sess.removeMember(ctx, req)
	case protocol.TypeLeave:
		resp, err = sess.leave(ctx, req)
	case protocol.TypeMembers:
		resp, err = sess.members(ctx, req)
	case protocol.TypeConversations:
		resp, err = sess.conversations(ctx, req)
	case protocol.TypeSend:
		resp, err = sess.send(ctx, req)
	case protocol.TypeSync:
		resp, err = sess.sync(ctx, req)
	case protocol.TypeHistory:
		resp, err = sess.history(ctx, req)
	case protocol.TypeTyping:
		resp, err = sess.typing(ctx, req)
	case protocol.TypeRead:
		resp, err = sess.read(ctx, req)
	case protocol.TypePresence:
		resp, err = sess.presence(ctx, req)
	case protocol.TypeRegisterDevice:
		resp, err = sess.registerDevice(ctx, req)
	case protocol.TypeUnregisterDevice:
		resp, err = sess.unregisterDevice(ctx, req)
	case protocol.TypeDevices:
		resp, err = sess.devices(ctx, req)
	case protocol.TypeMute:
		resp, err = sess.mute(ctx, req)
	default:
		err = protocol.Errorf(protocol.CodeBadRequest, "unknown type %q", req.Type)
	}
	if err != nil {
		err.Type = protocol.TypeError
		err.ID = req.ID
		return err
	}
	return resp
}

func (sess *session) actor() conversation.Actor {
	return conversation.Actor{User: sess.user, Session: sess.id}
}

// checkConv validates a conversation id and that the user is a member.
func (sess *session) checkConv(ctx context.Context, conv string) *protocol.Error {
	if !protocol.ValidID(conv) {
		return protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	ok, err := sess.srv.convs.IsMember(ctx, conv, sess.user)
	if err != nil {
		return sess.fail(err)
	}
	if !ok {
		return toProtocol(conversation.ErrForbidden)
	}
	return nil
}

// toProtocol maps an error of the parts behind the gateway to its code.
func toProtocol(err error) *protocol.Error {
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, conversation.ErrForbidden):
		return protocol.Errorf(protocol.CodeForbidden, "not a member of this conversation")
	case errors.Is(err, conversation.ErrBadRequest):
		return protocol.Errorf(protocol.CodeBadRequest, "%s", err.Error())
	case errors.Is(err, conversation.ErrNotFound):
		return protocol.Errorf(protocol.CodeNotFound, "%s", err.Error())
	case errors.Is(err, conversation.ErrTooLarge):
		return protocol.Errorf(protocol.CodeTooLarge, "%s", err.Error())
	case errors.Is(err, conversation.ErrConflict):
		return protocol.Errorf(protocol.CodeConflict, "%s", err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, nats.ErrTimeout):
		return protocol.Errorf(protocol.CodeUnavailable, "the server did not answer in time; retry")
	case errors.Is(err, nats.ErrNoResponders):
		return protocol.Errorf(protocol.CodeUnavailable, "a backend service is not running; retry")
	default:
		return protocol.Errorf(protocol.CodeInternal, "internal error")
	}
}

func (sess *session) fail(err error) *protocol.Error {
	pe := toProtocol(err)
	if pe.Code == protocol.CodeInternal || pe.Code == protocol.CodeUnavailable {
		sess.srv.cfg.Logger.Warn("request failed", "user", sess.user, "err", err)
	}
	return pe
}

func validIDs(ids []string) bool {
	for _, id := range ids {
		if !protocol.ValidID(id) {
			return false
		}
	}
	return true
}

func (sess *session) create(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !validIDs(req.Members) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "members must match [A-Za-z0-9_-]{1,64}")
	}
	others := slices.DeleteFunc(slices.Clone(req.Members), func(u string) bool { return u == sess.user })
	var d *conversation.Doc
	var err error
	switch req.Kind {
	case protocol.ConversationDirect:
		slices.Sort(others)
		others = slices.Compact(others)
		if len(others) != 1 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "a direct conversation names exactly one other user")
		}
		d, _, err = sess.srv.convs.CreateDirect(ctx, sess.actor(), others[0])
	case protocol.ConversationGroup:
		d, err = sess.srv.convs.CreateGroup(ctx, sess.actor(), req.Title, others)
	default:
		return nil, protocol.Errorf(protocol.CodeBadRequest, `kind must be "direct" or "group"`)
	}
	if err != nil {
		return nil, sess.fail(err)
	}
	c := d.Protocol(sess.srv.cfg.MembersInline)
	if c.LastSeq, err = sess.srv.msgs.Last(ctx, d.Conv); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.ConversationFrame{Type: protocol.TypeConversation, ID: req.ID, Conversation: c}, nil
}

func (sess *session) addMember(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	users := req.Users
	if req.User != "" {
		users = append(slices.Clone(users), req.User)
	}
	if len(users) == 0 || !validIDs(users) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "user or users must name valid user ids")
	}
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	if _, _, err := sess.srv.convs.AddMembers(ctx, sess.actor(), req.Conv, users); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

func (sess *session) removeMember(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) || !protocol.ValidID(req.User) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv and user must be valid ids")
	}
	if _, err := sess.srv.convs.RemoveMember(ctx, sess.actor(), req.Conv, req.User); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

func (sess *session) leave(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	if _, err := sess.srv.convs.Leave(ctx, sess.actor(), req.Conv); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

func (sess *session) members(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	var after string
	if len(req.After) > 0 && string(req.After) != "null" {
		if err := json.Unmarshal(req.After, &after); err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "after must be a user id string")
		}
	}
	d, err := sess.srv.convs.GetForMember(ctx, req.Conv, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	limit := pageLimit(req.Limit, 1000)
	all := d.SortedMembers()
	start := sort.SearchStrings(all, after)
	if start < len(all) && after != "" && all[start] == after {
		start++
	}
	end := min(start+limit, len(all))
	return &protocol.MembersFrame{Type: protocol.TypeMembers, ID: req.ID, Conv: req.Conv, Members: all[start:end], More: end < len(all)}, nil
}

func (sess *session) conversations(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	ids, err := sess.srv.convs.UserConversations(ctx, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	out := make([]*protocol.Conversation, len(ids))
	err = parallel(ctx, len(ids), 16, func(ctx context.Context, i int) error {
		d, err := sess.srv.convs.GetForMember(ctx, ids[i], sess.user)
		if errors.Is(err, conversation.ErrForbidden) {
			return nil // the index may still name a conversation the user left
		}
		if err != nil {
			return err
		}
		c := d.Protocol(sess.srv.cfg.MembersInline)
		if c.LastSeq, err = sess.srv.msgs.Last(ctx, d.Conv); err != nil {
			return err
		}
		if c.ReadSeq, err = sess.srv.convs.ReadSeq(ctx, d.Conv, sess.user); err != nil {
			return err
		}
		if c.LastSeq > c.ReadSeq {
			if c.Unread, err = sess.srv.msgs.CountAfter(ctx, d.Conv, c.ReadSeq, maxUnread); err != nil {
				return err
			}
		}
		out[i] = c
		return nil
	})
	if err != nil {
		return nil, sess.fail(err)
	}
	out = slices.DeleteFunc(out, func(c *protocol.Conversation) bool { return c == nil })
	return &protocol.ConversationsFrame{Type: protocol.TypeConversations, ID: req.ID, Conversations: out}, nil
}

func (sess *session) typing(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if err := sess.checkConv(ctx, req.Conv); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(schema.TypingNotice{User: sess.user})
	if err := sess.srv.nc.Publish(schema.ConvTyping(req.Conv), data); err != nil {
		return nil, sess.fail(err)
	}
	if req.ID == "" {
		return nil, nil
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

// pageLimit applies the protocol's paging rule: missing or ≤ 0 means the
// default, above the cap means the cap.
func pageLimit(limit, maxLimit int) int {
	if limit <= 0 {
		return min(protocol.DefaultLimit, maxLimit)
	}
	return min(limit, maxLimit)
}

func parseSeq(raw json.RawMessage) (uint64, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, true
	}
	v, err := strconv.ParseUint(string(raw), 10, 64)
	return v, err == nil
}
