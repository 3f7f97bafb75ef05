package gateway

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Consent (docs/protocol.md, "Consent"): message requests, invitations,
// hiding and who may add a user. The rules live behind the Consent
// interface; the gateway asks it and keeps what a request's recipient
// shares (typing, read receipts) to itself until they accept.

// ErrRefused: the user concerned does not consent to the request (their
// add_policy); the client sees the error's text (protocol.CodeForbidden).
var ErrRefused = errors.New("gateway: refused")

// Consent is what the gateway needs of the consent rules.
type Consent interface {
	// Membership reports whether uid is a member of conv and whether uid
	// has yet to accept it (a message request to uid), with one read.
	Membership(ctx context.Context, conv, uid string) (member, pending bool, err error)
	// View returns conv as uid's list shows it: uid is a member or
	// invited; ErrForbidden otherwise.
	View(ctx context.Context, conv, uid string) (Conversation, error)
	// UserList returns uid's conversation ids (UserConversations) and,
	// for those uid hid, the last seq when hidden.
	UserList(ctx context.Context, uid string) ([]string, map[string]uint64, error)
	// AddOrInvite adds users to the group conv, inviting instead those
	// who accept adds from nobody; it returns them. A user who accepts
	// adds only from contacts refuses the whole request (ErrRefused).
	AddOrInvite(ctx context.Context, by Actor, conv string, users []string) ([]string, error)
	// Accept accepts the message request of conv or the invitation into
	// it; accepting again changes nothing.
	Accept(ctx context.Context, by Actor, conv string) (Conversation, error)
	// Decline declines the message request of conv or the invitation into
	// it: conv disappears for by.User.
	Decline(ctx context.Context, by Actor, conv string) error
	// Hide takes conv off uid's list until a message after seq arrives.
	Hide(ctx context.Context, uid, conv string, seq uint64) error
	// IsContact reports whether a and b have an accepted direct
	// conversation: one read.
	IsContact(ctx context.Context, a, b string) (bool, error)
	// AddPolicy returns uid's add_policy.
	AddPolicy(ctx context.Context, uid string) (string, error)
	// SetAddPolicy sets uid's add_policy (ErrBadRequest when unknown).
	SetAddPolicy(ctx context.Context, uid, policy string) (string, error)
}

// member checks a conversation id and that the user is a member, and
// reports whether the user has yet to accept it: the read checkConv makes,
// telling a request apart at no extra cost.
func (sess *session) member(ctx context.Context, conv string) (pending bool, perr *protocol.Error) {
	if !protocol.ValidID(conv) {
		return false, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	ok, pending, err := sess.srv.consent.Membership(ctx, conv, sess.user)
	if err != nil {
		return false, sess.fail(err)
	}
	if !ok {
		return false, toProtocol(ErrForbidden)
	}
	return pending, nil
}

// acceptBySending accepts the request conv when its recipient sends in
// it: only then, once, does the send path do more than read the key.
func (sess *session) acceptBySending(ctx context.Context, conv string) *protocol.Error {
	if _, err := sess.srv.consent.Accept(ctx, sess.actor(), conv); err != nil {
		return sess.fail(err)
	}
	return nil
}

func (sess *session) accept(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	d, err := sess.srv.consent.Accept(ctx, sess.actor(), req.Conv)
	if err != nil {
		return nil, sess.fail(err)
	}
	sess.announceRead(ctx, req.Conv)
	return sess.conversationFrame(ctx, req.ID, d)
}

// announceRead tells the members how far the user has read conv: reads
// made while it was a request were kept to the user, and accepting it
// shares them from now on. Best effort, like every read notice.
func (sess *session) announceRead(ctx context.Context, conv string) {
	seq, err := sess.srv.markers.ReadSeq(ctx, conv, sess.user)
	if err != nil || seq == 0 {
		return
	}
	data, _ := json.Marshal(schema.ReadNotice{User: sess.user, Seq: seq})
	_ = sess.srv.nc.Publish(schema.ConvRead(conv), data)
}

func (sess *session) decline(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	if err := sess.srv.consent.Decline(ctx, sess.actor(), req.Conv); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

// hide takes a conversation off the user's list until a new message.
func (sess *session) hide(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if perr := sess.hideConv(ctx, req.Conv); perr != nil {
		return nil, perr
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

func (sess *session) hideConv(ctx context.Context, conv string) *protocol.Error {
	if perr := sess.checkConv(ctx, conv); perr != nil {
		return perr
	}
	last, err := sess.srv.msgs.Last(ctx, conv)
	if err != nil {
		return sess.fail(err)
	}
	if err := sess.srv.consent.Hide(ctx, sess.user, conv, last); err != nil {
		return sess.fail(err)
	}
	return nil
}

// leaveDirect is leave of a direct conversation, which has no members to
// remove: it hides it. It reports whether conv is one.
func (sess *session) leaveDirect(ctx context.Context, conv string) (bool, *protocol.Error) {
	d, err := sess.srv.convs.Get(ctx, conv, sess.user)
	if err != nil {
		return false, sess.fail(err)
	}
	if d.Protocol(0).Kind != protocol.ConversationDirect {
		return false, nil
	}
	return true, sess.hideConv(ctx, conv)
}

// leaveInvitation is leave of a group the user is not a member of, which
// leaveDirect refused with refusal: if the user is invited to it, leaving
// declines the invitation; otherwise the refusal stands.
func (sess *session) leaveInvitation(ctx context.Context, conv string, refusal *protocol.Error) *protocol.Error {
	d, err := sess.srv.consent.View(ctx, conv, sess.user)
	if errors.Is(err, ErrForbidden) {
		return refusal
	}
	if err != nil {
		return sess.fail(err)
	}
	if d.StateFor(sess.user) != protocol.ConvStateInvited {
		return refusal
	}
	if err := sess.srv.consent.Decline(ctx, sess.actor(), conv); err != nil {
		return sess.fail(err)
	}
	return nil
}

// settings reads the user's settings and, with add_policy, sets it.
func (sess *session) settings(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	var policy string
	var err error
	if req.AddPolicy != "" {
		if !protocol.ValidAddPolicy(req.AddPolicy) {
			return nil, protocol.Errorf(protocol.CodeBadRequest, `add_policy must be "everyone", "contacts" or "nobody"`)
		}
		policy, err = sess.srv.consent.SetAddPolicy(ctx, sess.user, req.AddPolicy)
	} else {
		policy, err = sess.srv.consent.AddPolicy(ctx, sess.user)
	}
	if err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.Settings{Type: protocol.TypeSettings, ID: req.ID, AddPolicy: policy}, nil
}

// conversationFrame answers with d as the user sees it, last seq included.
func (sess *session) conversationFrame(ctx context.Context, id string, d Conversation) (any, *protocol.Error) {
	c := d.Protocol(sess.srv.cfg.MembersInline)
	c.State = d.StateFor(sess.user)
	c.Role = d.Role(sess.user)
	var err error
	if c.LastSeq, err = sess.srv.msgs.Last(ctx, c.Conv); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.ConversationFrame{Type: protocol.TypeConversation, ID: id, Conversation: c}, nil
}
