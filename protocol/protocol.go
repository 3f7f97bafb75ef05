// Package protocol holds the wire types of Natter's client protocol v1
// (docs/protocol.md): the frames WebSocket clients and the gateway exchange,
// the error codes, and the envelope stored in the CHAT stream. The gateway and
// the Go client share these types so the two cannot drift apart.
package protocol

import (
	"encoding/json"
	"time"
)

// Frame types sent by clients.
const (
	TypeHello           = "hello"
	TypePing            = "ping"
	TypeCreate          = "create"
	TypeAddMember       = "add_member"
	TypeRemoveMember    = "remove_member"
	TypeLeave           = "leave"
	TypeMembers         = "members"
	TypeConversations   = "conversations"
	TypeSend            = "send"
	TypeSync            = "sync"
	TypeHistory         = "history"
	TypeTyping          = "typing"
	TypeRead            = "read"
	TypePresence        = "presence"
	TypeRegisterDevice  = "register_device"
	TypeMute            = "mute"
	TypeWelcome         = "welcome"
	TypePong            = "pong"
	TypeConversation    = "conversation"
	TypeOK              = "ok"
	TypeAck             = "ack"
	TypeMessage         = "message"
	TypeMessages        = "messages"
	TypeMember          = "member"
	TypeError           = "error"
	ConversationDirect  = "direct"
	ConversationGroup   = "group"
	MemberActionAdded   = "added"
	MemberActionRemoved = "removed"
	KindMessage         = ""
	KindEdit            = "edit"
	KindDelete          = "delete"
	KindReaction        = "reaction"
	// KindEvent is a conversation event stored among the messages (a
	// rename, a role change, a ban): sender is who did it, ref is 0 and the
	// body says what happened (GroupEvent: {"event": ...}).
	KindEvent            = "event"
	DefaultHeartbeatSecs = 20
)

// Paging limits shared by sync, history and members.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	// MaxBodyBytes is the largest accepted message body, measured as the bytes
	// of its JSON as received.
	MaxBodyBytes = 64 << 10
	// MaxIDLen is the longest user or conversation id.
	MaxIDLen = 64
	// MaxClientIDLen is the longest client_id.
	MaxClientIDLen = 128
	// MaxDeviceBytes bounds the device label of hello: it is stored with
	// each connection's presence key.
	MaxDeviceBytes = 128
	// MaxPageBytes bounds the frame of a page (sync, history,
	// conversations): a page ends early, with more, before the next item
	// would take it past this. Pages stay far below a connection's send
	// queue limit however large the items are, so a reply can never get its
	// own connection closed.
	MaxPageBytes = 1 << 20
	// DefaultConversationsLimit and MaxConversationsLimit are the page sizes
	// of conversations: missing or ≤ 0 means the default, above the cap
	// means the cap.
	DefaultConversationsLimit = 100
	MaxConversationsLimit     = 500
)

// Request is any frame a client sends. One struct for all types keeps decoding
// to a single pass; each handler reads the fields its type defines.
type Request struct {
	Type     string          `json:"type"`
	ID       string          `json:"id,omitempty"`
	Token    string          `json:"token,omitempty"`
	Device   string          `json:"device,omitempty"`
	Kind     string          `json:"kind,omitempty"`
	Title    string          `json:"title,omitempty"`
	Members  []string        `json:"members,omitempty"`
	Conv     string          `json:"conv,omitempty"`
	User     string          `json:"user,omitempty"`
	Users    []string        `json:"users,omitempty"`
	After    json.RawMessage `json:"after,omitempty"`
	Before   *int64          `json:"before,omitempty"`
	Limit    int             `json:"limit,omitempty"`
	ClientID string          `json:"client_id,omitempty"`
	// Resend marks a send the client already sent once with this
	// client_id (an added field): the gateway looks it up over the whole
	// de-dup window (gateway/resend.go).
	Resend   bool            `json:"resend,omitempty"`
	Body     json.RawMessage `json:"body,omitempty"`
	Ref      int64           `json:"ref,omitempty"`
	Seq      int64           `json:"seq,omitempty"`
	Platform string          `json:"platform,omitempty"`
	Until    *string         `json:"until,omitempty"`
	DeviceID string          `json:"device_id,omitempty"`
	// AddPolicy is the setting settings writes (consent.go).
	AddPolicy string `json:"add_policy,omitempty"`
	// ReplyTo quotes an earlier message of the conversation (send).
	ReplyTo uint64 `json:"reply_to,omitempty"`
	// Thread is the root seq of a thread (send, thread).
	Thread uint64 `json:"thread,omitempty"`
	// Mentions names the users a message mentions, or MentionAll (send).
	Mentions []string `json:"mentions,omitempty"`
	// Topic, Avatar and ReadOnly are the group settings update changes;
	// absent means unchanged.
	Topic    *string `json:"topic,omitempty"`
	Avatar   *string `json:"avatar,omitempty"`
	ReadOnly *bool   `json:"read_only,omitempty"`
	// OnlyAdminsAdd is the group setting update changes that lets only
	// the owner and admins add members; absent means unchanged.
	OnlyAdminsAdd *bool `json:"only_admins_add,omitempty"`
	// TTL is the disappearing-messages setting update changes, in
	// seconds (0: off; ttl.go); absent means unchanged.
	TTL *int64 `json:"ttl,omitempty"`
	// RetentionDays is the retention setting update changes (ttl.go):
	// days a message is kept, 0 for ever; absent means unchanged.
	RetentionDays *int64 `json:"retention_days,omitempty"`
	// Role is the role set_role gives.
	Role string `json:"role,omitempty"`
	// Ban makes remove_member a ban.
	Ban bool `json:"ban,omitempty"`
	// Level is the mute level of mute.
	Level string `json:"level,omitempty"`
	// ContentType, Size and Name describe the file of upload (attach.go).
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Name        string `json:"name,omitempty"`
	// Query and Cursor are search's (search.go).
	Query  string `json:"query,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// Welcome answers hello (or a valid Authorization header).
type Welcome struct {
	Type       string `json:"type"`
	ID         string `json:"id,omitempty"`
	User       string `json:"user"`
	Session    string `json:"session"`
	Heartbeat  int    `json:"heartbeat_s"`
	Device     string `json:"device,omitempty"`
	ServerTime string `json:"server_time,omitempty"`
}

// Conversation describes a conversation as a member sees it.
type Conversation struct {
	Conv        string   `json:"conv"`
	Kind        string   `json:"kind"`
	Title       string   `json:"title"`
	Owner       string   `json:"owner,omitempty"`
	MemberCount int      `json:"member_count"`
	Members     []string `json:"members,omitempty"`
	LastSeq     uint64   `json:"last_seq"`
	ReadSeq     uint64   `json:"read_seq"`
	Unread      uint64   `json:"unread"`
	// MentionCount counts the messages after ReadSeq that mention the
	// user or @all (saturating at MaxMentionCount).
	MentionCount uint64 `json:"mention_count,omitempty"`
	// Last previews the newest message or event (absent before any, and
	// for an invitation).
	Last    *Last  `json:"last,omitempty"`
	Created string `json:"created,omitempty"`
	// State is the user's consent state of it: "" (normal),
	// ConvStateRequest, ConvStatePending or ConvStateInvited.
	State string `json:"state,omitempty"`
	// Invited lists the users invited to a group who have not accepted
	// (when there are at most as many as members inline).
	Invited []string `json:"invited,omitempty"`
	// Mute is the user's mute level of it (MuteAll or MuteMentions),
	// omitted when not muted (mentions.go).
	Mute string `json:"mute,omitempty"`
	// Topic, Avatar and ReadOnly are a group's settings (update); Admins
	// its admins, sorted (the owner is Owner); Role the viewer's role
	// (RoleOwner, RoleAdmin or RoleMember), absent for one who is not a
	// member (an invitee).
	Topic    string   `json:"topic,omitempty"`
	Avatar   string   `json:"avatar,omitempty"`
	ReadOnly bool     `json:"read_only,omitempty"`
	Admins   []string `json:"admins,omitempty"`
	Role     string   `json:"role,omitempty"`
	// OnlyAdminsAdd says only the owner and admins add members (update),
	// omitted when any member may.
	OnlyAdminsAdd bool `json:"only_admins_add,omitempty"`
	// TTL is the disappearing-messages setting in seconds, omitted when
	// off (ttl.go).
	TTL int64 `json:"ttl,omitempty"`
	// RetentionDays is how many days messages are kept, omitted when
	// for ever (ttl.go).
	RetentionDays int64 `json:"retention_days,omitempty"`
}

// ConversationFrame carries one conversation: the reply to create, and the
// push a user gets when added to a conversation.
type ConversationFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	// Push marks the push: conversation is also the reply to create and
	// accept, and a client tells the two apart by it, not by the id.
	Push bool `json:"push,omitempty"`
	// Inbox marks a push of the user's inbox item (docs/protocol.md
	// "Inbox"): read_seq, unread, mention_count and last are the user's
	// as of last_seq. Other conversation pushes tell the conversation's
	// settings and members; their counts are not the user's.
	Inbox        bool          `json:"inbox,omitempty"`
	Conversation *Conversation `json:"conversation"`
}

// ConversationsFrame answers conversations with one page of the user's
// conversations.
type ConversationsFrame struct {
	Type          string          `json:"type"`
	ID            string          `json:"id,omitempty"`
	Conversations []*Conversation `json:"conversations"`
	// More says that further pages exist; Next is then the opaque cursor
	// to send as after for the next page; Next is absent on the last page.
	More bool   `json:"more"`
	Next string `json:"next,omitempty"`
}

// MembersFrame answers members, one page ordered by user id.
type MembersFrame struct {
	Type    string   `json:"type"`
	ID      string   `json:"id,omitempty"`
	Conv    string   `json:"conv"`
	Members []string `json:"members"`
	More    bool     `json:"more"`
}

// MemberEvent tells members that a user was added to or removed from a
// conversation.
type MemberEvent struct {
	Type   string `json:"type"`
	Conv   string `json:"conv"`
	User   string `json:"user"`
	Action string `json:"action"`
	By     string `json:"by,omitempty"`
}

// Ack answers send once the message is durable.
type Ack struct {
	Type      string `json:"type"`
	ID        string `json:"id,omitempty"`
	Conv      string `json:"conv"`
	Seq       uint64 `json:"seq"`
	TS        string `json:"ts"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// Files are the sent message's attachments (attach.go).
	Files []File `json:"files,omitempty"`
	// ExpiresAt is when the message disappears (ttl.go), omitted when it
	// does not.
	ExpiresAt string `json:"expires_at,omitempty"`
}

// Message is a stored message as clients receive it, pushed live and in
// sync/history pages.
type Message struct {
	Type     string `json:"type,omitempty"`
	Conv     string `json:"conv"`
	Seq      uint64 `json:"seq"`
	Sender   string `json:"sender"`
	ClientID string `json:"client_id"`
	TS       string `json:"ts"`
	Kind     string `json:"kind,omitempty"`
	Ref      uint64 `json:"ref,omitempty"`
	// ReplyTo, Quote, Thread and Mentions are the envelope's.
	ReplyTo  uint64   `json:"reply_to,omitempty"`
	Quote    *Quote   `json:"quote,omitempty"`
	Thread   uint64   `json:"thread,omitempty"`
	Mentions []string `json:"mentions,omitempty"`
	// ExpiresAt is when the item disappears (ttl.go), omitted when it
	// does not.
	ExpiresAt string          `json:"expires_at,omitempty"`
	Body      json.RawMessage `json:"body"`
	// EditSeq is the seq of the latest edit applied to this message (pages
	// only); Body is then the edited body.
	EditSeq uint64 `json:"edit_seq,omitempty"`
	// Deleted marks a tombstone: the message was deleted, Body is {}.
	Deleted bool `json:"deleted,omitempty"`
	// DeletedBy names who deleted it when that was not the sender (a
	// moderator; pages only).
	DeletedBy string `json:"deleted_by,omitempty"`
	// ThreadCount and ThreadLastSeq describe the thread under a root
	// message (pages only): how many replies, and the seq of the last.
	ThreadCount   uint64 `json:"thread_count,omitempty"`
	ThreadLastSeq uint64 `json:"thread_last_seq,omitempty"`
	// Prev is the seq of the item before this one in the conversation's
	// sync order (its valid message items), 0 for the first. It is the
	// same live and in pages, so a client holding Prev knows it holds
	// everything up to Seq; one that does not has a gap and syncs. Only
	// pushes and pages carry it; the history API's get leaves it 0.
	Prev uint64 `json:"prev"`
	// Files are the attachments the body references, with URLs for
	// this member (attach.go); not stored.
	Files []File `json:"files,omitempty"`
}

// MessagesFrame answers sync and history: ascending by seq.
type MessagesFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Conv string `json:"conv"`
	// Thread is the root seq of the thread a thread reply pages.
	Thread uint64 `json:"thread,omitempty"`
	// Root is the thread's root as it reads now (edits, a deletion and
	// its thread_count and thread_last_seq applied), in a thread reply.
	Root     *Message   `json:"root,omitempty"`
	Messages []*Message `json:"messages"`
	More     bool       `json:"more"`
}

// Typing is pushed to the other members of a conversation.
type Typing struct {
	Type string `json:"type"`
	Conv string `json:"conv"`
	User string `json:"user"`
}

// OK answers requests that have nothing else to say.
type OK struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

// Envelope is the JSON body of a message in the CHAT stream, on
// chat.msg.<conv>. Internal services publish the same shape; Sender, ClientID
// and Body are required. TS is set by the gateway; when absent the stream's
// own timestamp is used.
type Envelope struct {
	Sender   string `json:"sender"`
	ClientID string `json:"client_id"`
	TS       string `json:"ts,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Ref      uint64 `json:"ref,omitempty"`
	// ReplyTo is the seq of the quoted message and Quote what the gateway
	// copied of it when the reply was sent.
	ReplyTo uint64 `json:"reply_to,omitempty"`
	Quote   *Quote `json:"quote,omitempty"`
	// Thread is the seq of the thread's root for a thread reply.
	Thread uint64 `json:"thread,omitempty"`
	// Mentions are user ids, or MentionAll.
	Mentions []string `json:"mentions,omitempty"`
	// ExpiresAt is when the item disappears (ttl.go): the stream drops it
	// then (Nats-TTL), the stores and readers too.
	ExpiresAt string          `json:"expires_at,omitempty"`
	Body      json.RawMessage `json:"body"`
}

// MentionAll in mentions mentions every member.
const MentionAll = "@all"

// Roles in a group.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Quote is what a reply shows of the message it quotes.
type Quote struct {
	Seq     uint64 `json:"seq"`
	Sender  string `json:"sender"`
	Kind    string `json:"kind,omitempty"`
	Snippet string `json:"snippet"`
	// Deleted says the quoted message is deleted: it was when the reply
	// was sent, or (pages, resolved when read) was deleted since.
	Deleted bool `json:"deleted,omitempty"`
}

// FormatTime renders a server timestamp the way every frame carries it.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
