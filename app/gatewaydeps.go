package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/presence"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/webpush"
)

// The adapters below give the gateway the parts it declares interfaces
// for: they convert types and translate the parts' sentinel errors into the
// gateway's, so the gateway imports none of these packages.

var (
	_ gateway.Conversation  = (*conversation.Doc)(nil)
	_ gateway.Conversations = gatewayConversations{}
	_ gateway.ReadMarkers   = gatewayConversations{}
	_ gateway.Messages      = gatewayMessages{}
	_ gateway.Presence      = gatewayPresence{}
	_ gateway.Devices       = gatewayDevices{}
	_ gateway.Blocks        = gatewayBlocks{}
)

// translated is an error of a part behind the gateway that also matches
// one of the gateway's sentinels. Its text stays the part's: that is what
// the client is told.
type translated struct{ kind, err error }

func (e *translated) Error() string   { return e.err.Error() }
func (e *translated) Unwrap() []error { return []error{e.kind, e.err} }

// gatewayError translates the sentinels of conversation and history into
// the gateway's; other errors pass unchanged.
func gatewayError(err error) error {
	var kind error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, conversation.ErrRefused):
		kind = gateway.ErrRefused
	case errors.Is(err, conversation.ErrForbidden):
		kind = gateway.ErrForbidden
	case errors.Is(err, conversation.ErrBadRequest):
		kind = gateway.ErrBadRequest
	case errors.Is(err, conversation.ErrNotFound), errors.Is(err, history.ErrNotFound):
		kind = gateway.ErrNotFound
	case errors.Is(err, conversation.ErrTooLarge):
		kind = gateway.ErrTooLarge
	case errors.Is(err, conversation.ErrConflict):
		kind = gateway.ErrConflict
	case errors.Is(err, conversation.ErrRateLimited):
		kind = gateway.ErrRateLimited
	default:
		return err
	}
	return &translated{kind: kind, err: err}
}

// refuse builds an error matching kind with the message the client sees.
func refuse(kind error, format string, args ...any) error {
	return &translated{kind: kind, err: fmt.Errorf(format, args...)}
}

// gatewayConversations is the conversation store as the gateway's
// Conversations and ReadMarkers.
type gatewayConversations struct{ s *conversation.Store }

func actor(a gateway.Actor) conversation.Actor {
	return conversation.Actor{User: a.User, Session: a.Session}
}

// doc returns d as a gateway.Conversation, nil (not a typed nil) on error.
func doc(d *conversation.Doc, err error) (gateway.Conversation, error) {
	if err != nil {
		return nil, gatewayError(err)
	}
	return d, nil
}

func (c gatewayConversations) IsMember(ctx context.Context, conv, uid string) (bool, error) {
	ok, err := c.s.IsMember(ctx, conv, uid)
	return ok, gatewayError(err)
}

func (c gatewayConversations) Get(ctx context.Context, conv, uid string) (gateway.Conversation, error) {
	return doc(c.s.GetForMember(ctx, conv, uid))
}

func (c gatewayConversations) UserConversations(ctx context.Context, uid string) ([]string, error) {
	ids, err := c.s.UserConversations(ctx, uid)
	return ids, gatewayError(err)
}

func (c gatewayConversations) Shares(ctx context.Context, a string, aConvs []string, b string) (bool, error) {
	ok, err := c.s.Shares(ctx, a, aConvs, b)
	return ok, gatewayError(err)
}

func (c gatewayConversations) CreateDirect(ctx context.Context, by gateway.Actor, other string) (gateway.Conversation, error) {
	d, _, err := c.s.CreateDirect(ctx, actor(by), other)
	return doc(d, err)
}

func (c gatewayConversations) CreateGroup(ctx context.Context, by gateway.Actor, title string, others []string) (gateway.Conversation, error) {
	return doc(c.s.CreateGroup(ctx, actor(by), title, others))
}

func (c gatewayConversations) RemoveMember(ctx context.Context, by gateway.Actor, conv, user string) error {
	_, err := c.s.RemoveMember(ctx, actor(by), conv, user)
	return gatewayError(err)
}

func (c gatewayConversations) Leave(ctx context.Context, by gateway.Actor, conv string) error {
	_, err := c.s.Leave(ctx, actor(by), conv)
	return gatewayError(err)
}

func (c gatewayConversations) ReadSeq(ctx context.Context, conv, uid string) (uint64, error) {
	seq, err := c.s.ReadSeq(ctx, conv, uid)
	return seq, gatewayError(err)
}

func (c gatewayConversations) MarkRead(ctx context.Context, conv, uid string, seq uint64) (bool, error) {
	moved, err := c.s.MarkRead(ctx, conv, uid, seq)
	return moved, gatewayError(err)
}

func (c gatewayConversations) MarkDelivered(ctx context.Context, conv, uid string, seq uint64) (bool, error) {
	moved, err := c.s.MarkDelivered(ctx, conv, uid, seq)
	return moved, gatewayError(err)
}

func (c gatewayConversations) Receipts(ctx context.Context, conv string, users []string) ([]protocol.Receipt, error) {
	r, err := c.s.Receipts(ctx, conv, users)
	return r, gatewayError(err)
}

// gatewayMessages is history's Pages as the gateway's Messages: only Get
// has an error of its own to translate.
type gatewayMessages struct{ history.Pages }

func (m gatewayMessages) Get(ctx context.Context, conv string, seq uint64) (*protocol.Message, error) {
	msg, err := m.Pages.Get(ctx, conv, seq)
	return msg, gatewayError(err)
}

// gatewayPresence is the gateway's presence tracker and the PRESENCE
// bucket it answers queries from.
type gatewayPresence struct {
	*presence.Tracker
	kv jetstream.KeyValue
}

func (p gatewayPresence) State(ctx context.Context, uid string) (gateway.PresenceState, error) {
	st, err := presence.Get(ctx, p.kv, uid)
	if err != nil {
		return gateway.PresenceState{}, err
	}
	return gateway.PresenceState{Online: st.Online, Devices: st.Devices, LastSeen: st.LastSeen}, nil
}

// gatewayDevices is the push device store as the gateway's Devices. It
// checks what clients register against the providers' rules and Web Push
// endpoints against the endpoint policy: the server later POSTs to them.
type gatewayDevices struct {
	s         *pushnotify.Store
	endpoints webpush.EndpointPolicy
}

func (d gatewayDevices) Register(ctx context.Context, uid, platform, token string) (gateway.Device, error) {
	switch platform {
	case pushnotify.PlatformAPNs, pushnotify.PlatformFCM, pushnotify.PlatformWebPush:
	default:
		return gateway.Device{}, refuse(gateway.ErrBadRequest, `platform must be "apns", "fcm" or "webpush"`)
	}
	if token == "" || len(token) > pushnotify.MaxTokenBytes {
		return gateway.Device{}, refuse(gateway.ErrBadRequest, "token must be 1 to %d bytes", pushnotify.MaxTokenBytes)
	}
	if platform == pushnotify.PlatformWebPush {
		sub, err := webpush.ParseSubscription(token)
		if err != nil {
			return gateway.Device{}, refuse(gateway.ErrBadRequest, "token is not a Web Push subscription: %v", err)
		}
		if err := d.endpoints.Check(ctx, sub.Endpoint); err != nil {
			return gateway.Device{}, refuse(gateway.ErrBadRequest, "Web Push endpoint not allowed: %v", err)
		}
	}
	dev, err := d.s.Register(ctx, uid, platform, token)
	if err != nil {
		return gateway.Device{}, err
	}
	return gateway.Device{ID: dev.ID, Platform: dev.Platform, Added: dev.Added}, nil
}

func (d gatewayDevices) Unregister(ctx context.Context, uid, deviceID, token string) error {
	_, err := d.s.Remove(ctx, uid, func(dev pushnotify.Device) bool {
		return (deviceID == "" || dev.ID == deviceID) && (token == "" || dev.Token == token)
	})
	return err
}

func (d gatewayDevices) List(ctx context.Context, uid string) ([]gateway.Device, error) {
	ds, err := d.s.Devices(ctx, uid)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.Device, len(ds))
	for i, dev := range ds {
		out[i] = gateway.Device{ID: dev.ID, Platform: dev.Platform, Added: dev.Added}
	}
	return out, nil
}

func (d gatewayDevices) Mute(ctx context.Context, uid, conv, level string, until time.Time) error {
	return d.s.Mute(ctx, uid, conv, level, until)
}

func (d gatewayDevices) MuteLevel(ctx context.Context, uid, conv string) (string, error) {
	return d.s.MuteLevel(ctx, uid, conv)
}

// gatewayBlocks is the conversation store's block lists and add rings as
// the gateway's Blocks.
type gatewayBlocks struct{ s *conversation.Store }

func (b gatewayBlocks) Block(ctx context.Context, uid, other string) error {
	return gatewayError(b.s.Block(ctx, uid, other))
}

func (b gatewayBlocks) Unblock(ctx context.Context, uid, other string) error {
	return gatewayError(b.s.Unblock(ctx, uid, other))
}

func (b gatewayBlocks) Blocked(ctx context.Context, uid string) (gateway.BlockList, error) {
	users, rev, err := b.s.Blocked(ctx, uid)
	return gateway.BlockList{Users: users, Rev: rev}, gatewayError(err)
}

func (b gatewayBlocks) HasBlocked(ctx context.Context, uid, other string) (bool, error) {
	ok, err := b.s.HasBlocked(ctx, uid, other)
	return ok, gatewayError(err)
}

func (b gatewayBlocks) Watch(ctx context.Context, fn func(uid string, l gateway.BlockList)) error {
	return b.s.WatchBlocks(ctx, func(c conversation.BlockChange) {
		fn(c.User, gateway.BlockList{Users: c.Users, Rev: c.Rev})
	})
}

func (b gatewayBlocks) NoteAdded(ctx context.Context, uid string, limit int, window time.Duration) error {
	return gatewayError(b.s.NoteAdded(ctx, uid, limit, window))
}
