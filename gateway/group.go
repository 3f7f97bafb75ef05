package gateway

import (
	"context"
	"errors"

	"github.com/natter-chat/natter/protocol"
)

// Group settings, roles and moderation (docs/protocol.md, "Group settings,
// roles and moderation"). The rules (who may do what) live behind Groups;
// the gateway checks the requests' form, asks Groups, and enforces the
// two rules of the send path: a read-only group's plain members may not
// send (MemberView.Muted, Conversation.MayPost), and the owner and admins
// may delete anyone's message (a moderator delete).

// GroupSettings is an update's change; nil fields stay as they are.
type GroupSettings struct {
	Title, Topic, Avatar *string
	ReadOnly             *bool
	// OnlyAdminsAdd lets only the owner and admins add members.
	OnlyAdminsAdd *bool
	// TTL is the disappearing-messages setting in seconds (ttl.go).
	TTL *int64
	// RetentionDays keeps messages that many days, 0 for ever.
	RetentionDays *int64
}

// Groups changes a group's settings and roles. Refusals by role are
// ErrRefused with a text for the user; a non-member gets ErrForbidden
// whether the group exists or not.
type Groups interface {
	// Update changes the settings (owner, admins) and returns the group.
	Update(ctx context.Context, by Actor, conv string, set GroupSettings) (Conversation, error)
	// SetRole makes user an admin or a plain member (owner).
	SetRole(ctx context.Context, by Actor, conv, user, role string) error
	// Transfer hands the group to user (owner); by.User becomes an admin.
	Transfer(ctx context.Context, by Actor, conv, user string) error
	// Ban removes user (or withdraws their invitation) and bans them.
	Ban(ctx context.Context, by Actor, conv, user string) error
	// Unban lifts user's ban (owner, admins).
	Unban(ctx context.Context, by Actor, conv, user string) error
	// Banned lists the banned users, sorted (owner, admins).
	Banned(ctx context.Context, conv, uid string) ([]string, error)
}

func (sess *session) update(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	set := GroupSettings{Topic: req.Topic, Avatar: req.Avatar, ReadOnly: req.ReadOnly, OnlyAdminsAdd: req.OnlyAdminsAdd, TTL: req.TTL, RetentionDays: req.RetentionDays}
	if req.Title != "" {
		set.Title = &req.Title
	}
	d, err := sess.srv.groups.Update(ctx, sess.actor(), req.Conv, set)
	if err != nil {
		return nil, sess.fail(err)
	}
	return sess.conversationFrame(ctx, req.ID, d)
}

// convUser checks the conv and user of a request about one user of a group.
func convUser(req *protocol.Request) *protocol.Error {
	if !protocol.ValidID(req.Conv) || !protocol.ValidID(req.User) {
		return protocol.Errorf(protocol.CodeBadRequest, "conv and user must be valid ids")
	}
	return nil
}

func (sess *session) setRole(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if perr := convUser(req); perr != nil {
		return nil, perr
	}
	if !protocol.ValidRole(req.Role) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "role must be %q or %q", protocol.RoleAdmin, protocol.RoleMember)
	}
	return sess.ok(req, sess.srv.groups.SetRole(ctx, sess.actor(), req.Conv, req.User, req.Role))
}

func (sess *session) transfer(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if perr := convUser(req); perr != nil {
		return nil, perr
	}
	return sess.ok(req, sess.srv.groups.Transfer(ctx, sess.actor(), req.Conv, req.User))
}

func (sess *session) unban(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if perr := convUser(req); perr != nil {
		return nil, perr
	}
	return sess.ok(req, sess.srv.groups.Unban(ctx, sess.actor(), req.Conv, req.User))
}

func (sess *session) banned(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	users, err := sess.srv.groups.Banned(ctx, req.Conv, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	if users == nil {
		users = []string{}
	}
	return &protocol.BannedFrame{Type: protocol.TypeBanned, ID: req.ID, Conv: req.Conv, Users: users}, nil
}

// ok answers a change that has no reply of its own.
func (sess *session) ok(req *protocol.Request, err error) (any, *protocol.Error) {
	if err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

// errReadOnly refuses a send of a plain member in a read-only group.
func errReadOnly() *protocol.Error {
	return protocol.Errorf(protocol.CodeForbidden, "the group is read-only: only the owner and admins send")
}

// checkPosting refuses, when sends keep no views, the send of a member
// who may not post (a read-only group): one document read per send, the
// price of running without views. It returns the conversation's ttl.
func (sess *session) checkPosting(ctx context.Context, conv string) (int64, *protocol.Error) {
	d, err := sess.srv.convs.Get(ctx, conv, sess.user)
	if err != nil {
		return 0, sess.fail(err)
	}
	if !d.MayPost(sess.user) {
		return 0, errReadOnly()
	}
	return d.MessageTTL(), nil
}

// checkModerator allows a delete of another's message by the owner or an
// admin of the group conv: a moderator delete.
func (sess *session) checkModerator(ctx context.Context, conv string) *protocol.Error {
	d, err := sess.srv.convs.Get(ctx, conv, sess.user)
	if errors.Is(err, ErrForbidden) {
		return toProtocol(err)
	}
	if err != nil {
		return sess.fail(err)
	}
	// Only groups have an owner or admins.
	switch d.Role(sess.user) {
	case protocol.RoleOwner, protocol.RoleAdmin:
		return nil
	}
	return protocol.Errorf(protocol.CodeForbidden, "only the original sender, or the group's owner or an admin, may delete a message")
}
