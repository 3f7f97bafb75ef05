// Package conversation keeps conversations and their membership in the
// CONVERSATIONS KV bucket and announces every membership change as an event
// in the CHAT stream (chat.member.<conv>), in order with the messages.
//
// Layout: c.<conv> holds the conversation document with its members in join
// order (the first is the longest standing); u.<uid> indexes the
// conversations of one user (and those they hid); s.<uid> holds a user's
// settings. Message requests and invitations live in the document
// (consent.go). Documents change only by compare-and-set on
// their revision. The index is written before a member is added and cleared
// after a member is removed, so it is always a superset of the truth and is
// filtered through the documents when read. A change that stops half-way is
// finished by its retry or by the next reader (repair.go).
package conversation

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Doc is a conversation document.
type Doc struct {
	Conv    string    `json:"conv"`
	Kind    string    `json:"kind"`
	Title   string    `json:"title,omitempty"`
	Owner   string    `json:"owner,omitempty"`
	Created time.Time `json:"created"`
	// Members in join order.
	Members []string `json:"members"`
	// Pending are members of a direct conversation who have not accepted
	// it: the other started it, and it is a message request to them
	// (consent.go). Invited are users invited into a group who are not
	// members until they accept. Declined are users who declined a direct
	// request: no longer members, still shown as the other side of the
	// conversation to the requester. Each is bounded like Members.
	Pending  []string `json:"pending,omitempty"`
	Invited  []string `json:"invited,omitempty"`
	Declined []string `json:"declined,omitempty"`
	// Group settings and roles (group.go): Admins in promotion order
	// (bounded by protocol.MaxAdmins), Banned (bounded like Members).
	Topic    string   `json:"topic,omitempty"`
	Avatar   string   `json:"avatar,omitempty"`
	ReadOnly bool     `json:"read_only,omitempty"`
	Admins   []string `json:"admins,omitempty"`
	Banned   []string `json:"banned,omitempty"`
	// OnlyAdminsAdd: only the owner and admins add members (group.go).
	OnlyAdminsAdd bool `json:"only_admins_add,omitempty"`
	// TTL is the disappearing-messages setting in seconds, 0 when off
	// (ttl.go): groups and direct conversations.
	TTL int64 `json:"ttl,omitempty"`
	// RetentionDays keeps messages that many days, 0 for ever (ttl.go).
	RetentionDays int64 `json:"retention_days,omitempty"`
	// Change is the membership change that wrote this revision, so that a
	// retry or a reader that finds it unfinished (member keys, indexes or
	// its event missing) can finish it. A created change lists no users:
	// they are the members.
	Change *Event `json:"change,omitempty"`
}

// IsMember reports whether uid is a member.
func (d *Doc) IsMember(uid string) bool { return slices.Contains(d.Members, uid) }

// SortedMembers returns a sorted copy of the members.
func (d *Doc) SortedMembers() []string {
	m := slices.Clone(d.Members)
	slices.Sort(m)
	return m
}

// Protocol renders the document as clients see it; membersInline bounds
// how many members are listed inline (larger groups page through members).
// last, read and unread are filled by the caller.
func (d *Doc) Protocol(membersInline int) *protocol.Conversation {
	c := &protocol.Conversation{
		Conv:        d.Conv,
		Kind:        d.Kind,
		Title:       d.Title,
		Owner:       d.Owner,
		MemberCount: len(d.Members),
		Created:     protocol.FormatTime(d.Created),
		Topic:       d.Topic,
		Avatar:      d.Avatar,
		ReadOnly:    d.ReadOnly,
		TTL:         d.TTL,

		RetentionDays: d.RetentionDays,
		OnlyAdminsAdd: d.OnlyAdminsAdd,
	}
	if len(d.Admins) > 0 {
		c.Admins = slices.Sorted(slices.Values(d.Admins))
	}
	if len(d.Members) <= membersInline {
		c.Members = d.SortedMembers()
	}
	if len(d.Declined) > 0 {
		// A requester is not told that the request was declined.
		c.MemberCount += len(d.Declined)
		if c.Members != nil {
			c.Members = append(c.Members, d.Declined...)
			slices.Sort(c.Members)
		}
	}
	if len(d.Invited) > 0 && len(d.Invited) <= membersInline {
		c.Invited = slices.Sorted(slices.Values(d.Invited))
	}
	return c
}

// userIndex is the value of u.<uid>.
type userIndex struct {
	Convs []string `json:"convs"`
	// Hidden are the conversations uid hid (hide, or leave of a direct
	// conversation), with the last seq at the time: the conversation is
	// listed again once a message after it arrives.
	Hidden map[string]uint64 `json:"hidden,omitempty"`
}

// Event is a membership change, stored in the CHAT stream on
// chat.member.<conv> after the document changed.
type Event struct {
	// Action is "created", "added", "removed", "accepted" (a request's
	// recipient accepted it), "declined" (a request or invitation was
	// declined; a declined member is removed) or "withdrawn" (the owner
	// withdrew an invitation).
	Action string `json:"action"`
	Conv   string `json:"conv"`
	// Users are the users added (the members, for created) or removed.
	Users []string `json:"users"`
	// Invited are the users a created or added change invited instead
	// of adding (their add_policy is nobody): not members.
	Invited []string `json:"invited,omitempty"`
	// Items are what the change says in the conversation: each is stored
	// as a KindEvent item before the event (group.go).
	Items []protocol.GroupEvent `json:"items,omitempty"`
	// By is the user who made the change.
	By string `json:"by"`
	// Origin is the gateway session whose request made the change; it has
	// the reply and needs no conversation push.
	Origin string `json:"origin,omitempty"`
	// Rev is the document revision the change wrote; 0 for an event that
	// repairs an older change. An event is stored once per revision.
	Rev uint64 `json:"rev,omitempty"`
}

// Actor is who asks for a change: a user, over one gateway session.
type Actor struct {
	User    string
	Session string
}

// Event actions.
const (
	ActionCreated = "created"
	ActionAdded   = protocol.MemberActionAdded
	ActionRemoved = protocol.MemberActionRemoved
	// ActionAccepted: Users accepted the request they were pending in.
	ActionAccepted = "accepted"
	// ActionDeclined: Users declined a request (and are no longer
	// members) or an invitation.
	ActionDeclined = "declined"
)

func docKey(conv string) string { return "c." + conv }
func userKey(uid string) string { return "u." + uid }
func directID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	h := sha256.Sum256([]byte(a + "\n" + b))
	return "d_" + base64.RawURLEncoding.EncodeToString(h[:16])
}

func groupID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "g_" + base64.RawURLEncoding.EncodeToString(b[:])
}
