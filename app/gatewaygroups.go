package app

import (
	"context"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/gateway"
)

var _ gateway.Groups = gatewayGroups{}

// gatewayGroups is the conversation store's group settings and roles as
// the gateway's Groups.
type gatewayGroups struct{ s *conversation.Store }

func (g gatewayGroups) Update(ctx context.Context, by gateway.Actor, conv string, set gateway.GroupSettings) (gateway.Conversation, error) {
	return doc(g.s.Update(ctx, actor(by), conv, conversation.GroupSettings{
		Title: set.Title, Topic: set.Topic, Avatar: set.Avatar, ReadOnly: set.ReadOnly, OnlyAdminsAdd: set.OnlyAdminsAdd, TTL: set.TTL, RetentionDays: set.RetentionDays,
	}))
}

func (g gatewayGroups) SetRole(ctx context.Context, by gateway.Actor, conv, user, role string) error {
	_, err := g.s.SetRole(ctx, actor(by), conv, user, role)
	return gatewayError(err)
}

func (g gatewayGroups) Transfer(ctx context.Context, by gateway.Actor, conv, user string) error {
	_, err := g.s.Transfer(ctx, actor(by), conv, user)
	return gatewayError(err)
}

func (g gatewayGroups) Ban(ctx context.Context, by gateway.Actor, conv, user string) error {
	_, err := g.s.Ban(ctx, actor(by), conv, user)
	return gatewayError(err)
}

func (g gatewayGroups) Unban(ctx context.Context, by gateway.Actor, conv, user string) error {
	_, err := g.s.Unban(ctx, actor(by), conv, user)
	return gatewayError(err)
}

func (g gatewayGroups) Banned(ctx context.Context, conv, uid string) ([]string, error) {
	users, err := g.s.Banned(ctx, conv, uid)
	return users, gatewayError(err)
}
