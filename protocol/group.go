package protocol

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Group settings, roles and moderation (docs/protocol.md, "Group settings,
// roles and moderation").
const (
	// TypeUpdate changes a group's title, topic, avatar or read-only mode
	// (owner and admins); the reply is the conversation.
	TypeUpdate = "update"
	// TypeSetRole makes a member an admin or a plain member again (owner).
	TypeSetRole = "set_role"
	// TypeTransfer hands the group to another member (owner); the old
	// owner becomes an admin.
	TypeTransfer = "transfer"
	// TypeUnban lifts a ban (owner and admins).
	TypeUnban = "unban"
	// TypeBanned lists a group's banned users (owner and admins), and
	// names the reply.
	TypeBanned = "banned"
	// MaxTopicBytes bounds a group's topic.
	MaxTopicBytes = 1024
	// MaxAvatarBytes bounds a group's avatar URL.
	MaxAvatarBytes = 2048
	// MaxAdmins bounds the admins of one group (the owner not counted).
	MaxAdmins = 100
)

// BannedFrame answers banned: the group's banned users, sorted.
type BannedFrame struct {
	Type  string   `json:"type"`
	ID    string   `json:"id,omitempty"`
	Conv  string   `json:"conv"`
	Users []string `json:"users"`
}

// Events of a group: the "event" of a KindEvent item's body (GroupEvent).
const (
	EventRenamed  = "renamed"
	EventTopic    = "topic_changed"
	EventAvatar   = "avatar_changed"
	EventReadOnly = "read_only"
	// EventOnlyAdminsAdd: who may add members changed (only_admins_add).
	EventOnlyAdminsAdd = "only_admins_add"
	EventRoleChanged   = "role_changed"
	EventTransferred   = "transferred"
	EventBanned        = "banned"
	EventUnbanned      = "unbanned"
)

// GroupEvent is the body of a KindEvent item: one change of a group's
// settings or roles, made by By (the item's sender too). Only the fields
// of its kind of event are set: title (renamed), topic (topic_changed, ""
// when cleared), avatar (avatar_changed), read_only (read_only), user and
// role (role_changed), user (transferred: the new owner; banned,
// unbanned), only_admins_add (only_admins_add), ttl (ttl_changed, ttl.go).
type GroupEvent struct {
	Event    string  `json:"event"`
	By       string  `json:"by"`
	Title    *string `json:"title,omitempty"`
	Topic    *string `json:"topic,omitempty"`
	Avatar   *string `json:"avatar,omitempty"`
	ReadOnly *bool   `json:"read_only,omitempty"`
	// OnlyAdminsAdd is the new setting of only_admins_add.
	OnlyAdminsAdd *bool  `json:"only_admins_add,omitempty"`
	User          string `json:"user,omitempty"`
	Role          string `json:"role,omitempty"`
	// TTL is the new disappearing-messages setting of ttl_changed, in
	// seconds (0: off).
	TTL *int64 `json:"ttl,omitempty"`
	// RetentionDays is the new retention of retention_changed, in days
	// (0: for ever).
	RetentionDays *int64 `json:"retention_days,omitempty"`
}

// CheckTopic reports why topic cannot be a group's topic, or nil.
func CheckTopic(topic string) error {
	if len(topic) > MaxTopicBytes || !utf8.ValidString(topic) {
		return fmt.Errorf("topic must be valid UTF-8 of at most %d bytes", MaxTopicBytes)
	}
	return nil
}

// CheckAvatar reports why u cannot be a group's avatar, or nil: "" (no
// avatar) or an absolute https URL with a host, no credentials, of at most
// MaxAvatarBytes. Clients load it, so nothing else is accepted.
func CheckAvatar(u string) error {
	if u == "" {
		return nil
	}
	if len(u) > MaxAvatarBytes {
		return fmt.Errorf("avatar is over %d bytes", MaxAvatarBytes)
	}
	if strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("avatar must be a URL without spaces or control characters")
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" || p.User != nil || p.Opaque != "" {
		return fmt.Errorf("avatar must be an https URL with a host and no credentials")
	}
	return nil
}

// ValidRole reports whether set_role may give role.
func ValidRole(role string) bool { return role == RoleAdmin || role == RoleMember }
