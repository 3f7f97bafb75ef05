package app

import (
	"context"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/gateway"
)

var (
	_ gateway.Consent     = gatewayConsent{}
	_ gateway.MemberViews = gatewayConsent{}
)

// gatewayConsent is the conversation store's consent rules as the
// gateway's Consent.
type gatewayConsent struct{ s *conversation.Store }

func (c gatewayConsent) Membership(ctx context.Context, conv, uid string) (bool, bool, error) {
	ok, pending, err := c.s.Membership(ctx, conv, uid)
	return ok, pending, gatewayError(err)
}

// MemberView is the store's sound membership read, for the views the
// gateway's sends keep.
func (c gatewayConsent) MemberView(ctx context.Context, conv, uid string) (gateway.MemberView, error) {
	v, err := c.s.MemberView(ctx, conv, uid)
	return gateway.MemberView{Subject: v.Subject, Seq: v.Seq, Member: v.Member, Pending: v.Pending, Muted: v.Muted, TTL: v.TTL}, gatewayError(err)
}

func (c gatewayConsent) View(ctx context.Context, conv, uid string) (gateway.Conversation, error) {
	return doc(c.s.GetForViewer(ctx, conv, uid))
}

func (c gatewayConsent) UserList(ctx context.Context, uid string) ([]string, map[string]uint64, error) {
	ids, hidden, err := c.s.UserList(ctx, uid)
	return ids, hidden, gatewayError(err)
}

func (c gatewayConsent) AddOrInvite(ctx context.Context, by gateway.Actor, conv string, users []string) ([]string, error) {
	_, _, invited, err := c.s.AddOrInvite(ctx, actor(by), conv, users)
	return invited, gatewayError(err)
}

func (c gatewayConsent) Accept(ctx context.Context, by gateway.Actor, conv string) (gateway.Conversation, error) {
	return doc(c.s.Accept(ctx, actor(by), conv))
}

func (c gatewayConsent) Decline(ctx context.Context, by gateway.Actor, conv string) error {
	return gatewayError(c.s.Decline(ctx, actor(by), conv))
}

func (c gatewayConsent) Hide(ctx context.Context, uid, conv string, seq uint64) error {
	return gatewayError(c.s.Hide(ctx, conv, uid, seq))
}

func (c gatewayConsent) IsContact(ctx context.Context, a, b string) (bool, error) {
	ok, err := c.s.IsContact(ctx, a, b)
	return ok, gatewayError(err)
}

func (c gatewayConsent) AddPolicy(ctx context.Context, uid string) (string, error) {
	st, err := c.s.Settings(ctx, uid)
	return st.AddPolicy, gatewayError(err)
}

func (c gatewayConsent) SetAddPolicy(ctx context.Context, uid, policy string) (string, error) {
	st, err := c.s.SetAddPolicy(ctx, uid, policy)
	return st.AddPolicy, gatewayError(err)
}
