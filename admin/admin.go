package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/presence"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
)

// Config tunes an Admin. The zero value is filled with defaults.
type Config struct {
	// HistoryTimeout bounds one request to the history API (a
	// conversation's last seq); without an answer the CHAT stream is
	// asked instead. Default 5 s.
	HistoryTimeout time.Duration
	// KickWait is how long Kick waits for the user's connections to leave
	// the PRESENCE bucket. Default 10 s.
	KickWait time.Duration
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.HistoryTimeout <= 0 {
		c.HistoryTimeout = 5 * time.Second
	}
	if c.KickWait <= 0 {
		c.KickWait = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Admin reads and changes Natter's state in NATS for an operator.
type Admin struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	convs    *conversation.Store
	presence jetstream.KeyValue
	push     *pushnotify.Store
	remote   *history.Remote
	stream   *history.Stream
}

// New returns an Admin over nc, a connection as the operator user (a
// role's user may not read or change everything it needs). The schema
// must exist.
func New(ctx context.Context, cfg Config, nc *nats.Conn) (*Admin, error) {
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	convs, err := conversation.New(ctx, conversation.Config{}, js)
	if err != nil {
		return nil, err
	}
	pkv, err := js.KeyValue(ctx, schema.BucketPresence)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", schema.BucketPresence, err)
	}
	dkv, err := js.KeyValue(ctx, schema.BucketPush)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", schema.BucketPush, err)
	}
	stream, err := history.NewStream(ctx, js)
	if err != nil {
		return nil, err
	}
	return &Admin{cfg: cfg, nc: nc, js: js, convs: convs, presence: pkv,
		push:   pushnotify.NewStore(pushnotify.StoreConfig{}, dkv),
		remote: history.NewRemote(nc, cfg.HistoryTimeout), stream: stream}, nil
}

// Roles of a user in a conversation, as reports show them.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
	// RolePending: a member of a direct conversation who has not accepted
	// the other's message request.
	RolePending = "pending"
	// RoleInvited: invited into a group, not a member until they accept.
	RoleInvited = "invited"
	// RoleDeclined: declined a direct request; no longer a member.
	RoleDeclined = "declined"
)

// roleOf is uid's role in d, "" when d does not list uid.
func roleOf(d *conversation.Doc, uid string) string {
	switch {
	case d.IsMember(uid) && d.Owner == uid:
		return RoleOwner
	case d.IsPending(uid):
		return RolePending
	case d.IsMember(uid):
		return RoleMember
	case d.IsInvited(uid):
		return RoleInvited
	}
	for _, u := range d.Declined {
		if u == uid {
			return RoleDeclined
		}
	}
	return ""
}

// UserReport is what `natter admin user show` prints.
type UserReport struct {
	User string `json:"user"`
	// AddPolicy is who may add the user to groups (protocol.AddPolicy*).
	AddPolicy     string                `json:"add_policy"`
	Presence      Presence              `json:"presence"`
	Connections   []presence.Connection `json:"connections"`
	Conversations []UserConversation    `json:"conversations"`
	Devices       []Device              `json:"devices"`
	Blocked       []string              `json:"blocked"`
}

// Presence is a user's recorded presence.
type Presence struct {
	Online bool `json:"online"`
	// Devices is how many connections the user had at the last transition.
	Devices  int       `json:"devices"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Since    time.Time `json:"since,omitzero"`
}

// UserConversation is one conversation of a user.
type UserConversation struct {
	Conv    string `json:"conv"`
	Kind    string `json:"kind"`
	Title   string `json:"title,omitempty"`
	Role    string `json:"role"`
	ReadSeq uint64 `json:"read_seq"`
}

// Device is a device registered for push, without its token: the token
// is a credential to notify the device.
type Device struct {
	Platform string `json:"platform"`
	// Fingerprint is the device id, the first 64 bits of SHA-256 of the
	// platform and token (pushnotify.DeviceID): enough to tell devices
	// apart and to match one a client reports, nothing to send with.
	Fingerprint string    `json:"fingerprint"`
	Added       time.Time `json:"added"`
}

// User reports on uid: conversations with role and read marker,
// presence and open connections, push devices, block list. A user nothing
// mentions is ErrUnknownUser.
func (a *Admin) User(ctx context.Context, uid string) (*UserReport, error) {
	if !protocol.ValidID(uid) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, uid)
	}
	r := &UserReport{User: uid, Conversations: []UserConversation{}, Devices: []Device{}, Blocked: []string{}}
	ids, err := a.convs.UserConversations(ctx, uid)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		d, err := a.convs.Get(ctx, id)
		if errors.Is(err, conversation.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		role := roleOf(d, uid)
		if role == "" {
			continue // the index is a superset of the documents
		}
		seq, err := a.convs.ReadSeq(ctx, id, uid)
		if err != nil {
			return nil, err
		}
		r.Conversations = append(r.Conversations, UserConversation{Conv: id, Kind: d.Kind, Title: d.Title, Role: role, ReadSeq: seq})
	}
	st, err := presence.Get(ctx, a.presence, uid)
	if err != nil {
		return nil, err
	}
	r.Presence = Presence{Online: st.Online, Devices: st.Devices, LastSeen: st.LastSeen, Since: st.Since}
	if r.Connections, err = presence.Connections(ctx, a.presence, uid); err != nil {
		return nil, err
	}
	if r.Connections == nil {
		r.Connections = []presence.Connection{}
	}
	devs, err := a.push.Devices(ctx, uid)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		r.Devices = append(r.Devices, Device{Platform: d.Platform, Fingerprint: d.ID, Added: d.Added})
	}
	blocked, _, err := a.convs.Blocked(ctx, uid)
	if err != nil {
		return nil, err
	}
	if blocked != nil {
		r.Blocked = blocked
	}
	settings, err := a.convs.Settings(ctx, uid)
	if err != nil {
		return nil, err
	}
	r.AddPolicy = settings.AddPolicy
	if r.AddPolicy == "" {
		r.AddPolicy = protocol.AddPolicyEveryone
	}
	if len(ids) == 0 && !st.Online && st.LastSeen.IsZero() && len(r.Connections) == 0 && len(r.Devices) == 0 && len(r.Blocked) == 0 {
		return nil, fmt.Errorf("%w %q: in no conversation, never connected, no push device, no block list", ErrUnknownUser, uid)
	}
	return r, nil
}

// ConvReport is what `natter admin conv show` prints.
type ConvReport struct {
	Conv    string    `json:"conv"`
	Kind    string    `json:"kind"`
	Title   string    `json:"title,omitempty"`
	Owner   string    `json:"owner,omitempty"`
	Created time.Time `json:"created"`
	// LastSeq is the seq of the conversation's last message, from the
	// history API (the store and the stream), or from the CHAT stream
	// alone when the history service does not answer (LastSeqFrom).
	LastSeq     uint64 `json:"last_seq"`
	LastSeqFrom string `json:"last_seq_from"`
	// Partition is the conversation's fan-out partition, delivered by
	// FanoutConsumer; -1 on an unpartitioned stream.
	Partition      int    `json:"partition"`
	FanoutConsumer string `json:"fanout_consumer"`
	// Stream is the message stream holding it: CHAT, or its partition's
	// CHAT_<p>.
	Stream string `json:"stream"`
	// Members are the members in join order, then the invited and the
	// declined, each with their read marker.
	Members []Member `json:"members"`
}

// Member is one user of a conversation.
type Member struct {
	User    string `json:"user"`
	Role    string `json:"role"`
	ReadSeq uint64 `json:"read_seq"`
}

// Conv reports on the conversation id.
func (a *Admin) Conv(ctx context.Context, id string) (*ConvReport, error) {
	d, err := a.doc(ctx, id)
	if err != nil {
		return nil, err
	}
	r := &ConvReport{Conv: d.Conv, Kind: d.Kind, Title: d.Title, Owner: d.Owner, Created: d.Created, Members: []Member{}}
	layout, err := schema.ReadLayout(ctx, a.js)
	if err != nil {
		return nil, err
	}
	r.Partition, r.FanoutConsumer, r.Stream = -1, schema.ConsumerFanout, layout.StreamOf(id)
	if layout.Partitions > 0 {
		r.Partition = layout.Partition(id)
		r.FanoutConsumer = schema.ConsumerFanoutPartition(r.Partition)
	}
	if r.LastSeq, err = a.remote.Last(ctx, id); err == nil {
		r.LastSeqFrom = "history"
	} else {
		if r.LastSeq, err = a.stream.Last(ctx, id); err != nil {
			return nil, err
		}
		r.LastSeqFrom = "stream"
	}
	users := append(append(append([]string{}, d.Members...), d.Invited...), d.Declined...)
	for _, u := range users {
		seq, err := a.convs.ReadSeq(ctx, id, u)
		if err != nil {
			return nil, err
		}
		r.Members = append(r.Members, Member{User: u, Role: roleOf(d, u), ReadSeq: seq})
	}
	return r, nil
}

func (a *Admin) doc(ctx context.Context, id string) (*conversation.Doc, error) {
	if !protocol.ValidID(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	d, err := a.convs.Get(ctx, id)
	if errors.Is(err, conversation.ErrNotFound) {
		return nil, fmt.Errorf("%w %q", ErrUnknownConversation, id)
	}
	return d, err
}

// Change is the outcome of an add or remove.
type Change struct {
	Conv   string `json:"conv"`
	User   string `json:"user"`
	Action string `json:"action"`
	// Changed is false when there was nothing to do (already a member).
	Changed bool `json:"changed"`
}

// AddMember adds uid to the group conv as the operator
// (conversation.Store.AddAsOperator): the membership event is stored and
// fanned out like any add, so uid's clients get the conversation and the
// members get a member push.
func (a *Admin) AddMember(ctx context.Context, conv, uid string) (*Change, error) {
	if _, err := a.doc(ctx, conv); err != nil {
		return nil, err
	}
	if !protocol.ValidID(uid) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, uid)
	}
	_, added, err := a.convs.AddAsOperator(ctx, conv, []string{uid})
	if err != nil {
		return nil, fmt.Errorf("add %s to %s: %w", uid, conv, err)
	}
	return &Change{Conv: conv, User: uid, Action: conversation.ActionAdded, Changed: len(added) > 0}, nil
}

// RemoveMember removes uid from the group conv as the operator
// (conversation.Store.RemoveAsOperator); removing the owner hands the
// group to the longest standing member, as leaving does.
func (a *Admin) RemoveMember(ctx context.Context, conv, uid string) (*Change, error) {
	if _, err := a.doc(ctx, conv); err != nil {
		return nil, err
	}
	if !protocol.ValidID(uid) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, uid)
	}
	if _, err := a.convs.RemoveAsOperator(ctx, conv, uid); err != nil {
		return nil, fmt.Errorf("remove %s from %s: %w", uid, conv, err)
	}
	return &Change{Conv: conv, User: uid, Action: conversation.ActionRemoved, Changed: true}, nil
}

// KickReport is the outcome of Kick.
type KickReport struct {
	User string `json:"user"`
	// Before are the connections PRESENCE listed when the kick was sent.
	Before int `json:"before"`
	// Closed is how many of them were gone within the wait.
	Closed int `json:"closed"`
	// Open are the connections listed after the wait: new ones (a client
	// reconnecting: kick revokes nothing) or ones of an unreachable
	// gateway.
	Open []presence.Connection `json:"open"`
}

// Kick closes every WebSocket connection of uid on every gateway, with
// protocol.CloseKicked: it publishes schema.UserKick, which each gateway
// holding a connection of uid receives on its subscription for the
// user, then waits up to KickWait for the connections PRESENCE listed to
// go. The user's tokens stay valid: a client may reconnect.
func (a *Admin) Kick(ctx context.Context, uid string) (*KickReport, error) {
	if !protocol.ValidID(uid) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, uid)
	}
	before, err := presence.Connections(ctx, a.presence, uid)
	if err != nil {
		return nil, err
	}
	if err := a.nc.Publish(schema.UserKick(uid), nil); err != nil {
		return nil, fmt.Errorf("kick %s: %w", uid, err)
	}
	if err := a.nc.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("kick %s: %w", uid, err)
	}
	r := &KickReport{User: uid, Before: len(before)}
	deadline := a.cfg.Now().Add(a.cfg.KickWait)
	for {
		now, err := presence.Connections(ctx, a.presence, uid)
		if err != nil {
			return nil, err
		}
		r.Closed = 0
		for _, b := range before {
			if !containsConn(now, b) {
				r.Closed++
			}
		}
		r.Open = now
		if r.Closed == len(before) || !a.cfg.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if r.Open == nil {
		r.Open = []presence.Connection{}
	}
	return r, nil
}

func containsConn(l []presence.Connection, c presence.Connection) bool {
	for _, x := range l {
		if x.Gateway == c.Gateway && x.Session == c.Session {
			return true
		}
	}
	return false
}
