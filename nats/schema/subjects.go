// Package schema declares, as data, every JetStream stream, KV bucket and
// consumer Natter uses, and builds every subject. Ensure creates or updates
// them idempotently at start. Nothing else in the tree spells a subject.
package schema

// Subject prefixes. Ids are single subject tokens ([A-Za-z0-9_-]{1,64},
// checked by protocol.ValidID before they get here).
const (
	msgPrefix      = "chat.msg."
	memberPrefix   = "chat.member."
	userPrefix     = "chat.user."
	convPrefix     = "chat.conv."
	presencePrefix = "chat.presence."
	deadPrefix     = "chat.dead."

	// MsgWildcard matches the messages of every conversation.
	MsgWildcard = "chat.msg.*"
	// MemberWildcard matches the membership events of every conversation.
	MemberWildcard = "chat.member.*"
	// TypingWildcard matches typing notices of every conversation.
	TypingWildcard = "chat.conv.*.typing"
	// FanoutWorkers is where the fan-out workers of every process announce
	// themselves, to share the partitions out (fanout).
	FanoutWorkers = "chat.fanout.workers"
	// DeadWildcard matches dead letters of every conversation.
	DeadWildcard = "chat.dead.*"
	// ReadWildcard matches read-marker notices of every conversation.
	ReadWildcard = "chat.conv.*.read"
	// DeliveredWildcard matches delivered-marker notices of every
	// conversation.
	DeliveredWildcard = "chat.conv.*.delivered"
	// PresenceWildcard matches the presence transitions of every user.
	PresenceWildcard = "chat.presence.*"
	// UserEventWildcard matches one event of every user: what a producer of
	// user events publishes to.
	UserEventWildcard = "chat.user.*.*"
	// UserAllWildcard matches everything addressed to every user: what a
	// gateway subscribes to, one user at a time.
	UserAllWildcard = "chat.user.*.>"
)

// Events pushed on a user's subject chat.user.<uid>.<event>. The payload is
// the client frame, encoded once by the producer.
const (
	EventMessage      = "msg"
	EventMember       = "member"
	EventConversation = "conv"
	EventTyping       = "typing"
	EventRead         = "read"
	EventDelivered    = "delivered"
	EventPresence     = "presence"
	// EventKick asks every gateway to close all of the user's connections
	// (natter admin user kick). It has one token more than the events
	// above, so UserEventWildcard, which the gateway and presence roles
	// publish to, does not match it: only the operator user publishes it,
	// while the gateway's subscription to UserAll(uid) receives it.
	EventKick = "admin.kick"
)

// Msg is the subject of conv's messages in the CHAT stream.
func Msg(conv string) string { return msgPrefix + conv }

// Member is the subject of conv's membership events in the CHAT stream.
func Member(conv string) string { return memberPrefix + conv }

// User is the subject of one event addressed to user uid.
func User(uid, event string) string { return userPrefix + uid + "." + event }

// UserKick is the subject that closes every connection of uid on every
// gateway (EventKick).
func UserKick(uid string) string { return User(uid, EventKick) }

// UserAll matches every event addressed to user uid.
func UserAll(uid string) string { return userPrefix + uid + ".>" }

// UserEvent matches one event of every user, chat.user.*.<event>.
func UserEvent(event string) string { return userPrefix + "*." + event }

// SplitUser splits a chat.user.<uid>.<event> subject into its user and
// event; both are "" when subject is not a user subject.
func SplitUser(subject string) (uid, event string) {
	if !hasPrefix(subject, userPrefix) || len(subject) == len(userPrefix) {
		return "", ""
	}
	rest := subject[len(userPrefix):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			return rest[:i], rest[i+1:]
		}
	}
	return rest, ""
}

// ConvTyping is where a gateway publishes a typing notice in conv.
func ConvTyping(conv string) string { return convPrefix + conv + ".typing" }

// Dead is where a stored message of conv that could not be processed is
// copied; conv may be "_" when the subject held no valid id.
func Dead(conv string) string { return deadPrefix + conv }

// ConvRead is where a gateway publishes a moved read marker in conv.
func ConvRead(conv string) string { return convPrefix + conv + ".read" }

// ConvDelivered is where a gateway publishes a moved delivered marker in
// conv.
func ConvDelivered(conv string) string { return convPrefix + conv + ".delivered" }

// Presence is the subject of uid's online/offline transitions.
func Presence(uid string) string { return presencePrefix + uid }

// ConvFromSubject returns the conversation token of a chat.msg.<conv>,
// chat.member.<conv> or chat.conv.<conv>.<event> subject, or of a stored
// chat.msg.<conv>.<p> or chat.member.<conv>.<p> (p a partition, see
// Layout), or "" when the subject is none of those.
func ConvFromSubject(subject string) string {
	var rest string
	switch {
	case hasPrefix(subject, msgPrefix):
		rest = subject[len(msgPrefix):]
	case hasPrefix(subject, memberPrefix):
		rest = subject[len(memberPrefix):]
	case hasPrefix(subject, convPrefix):
		rest = subject[len(convPrefix):]
		for i := 0; i < len(rest); i++ {
			if rest[i] == '.' {
				return rest[:i]
			}
		}
		return ""
	default:
		return ""
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			if !isPartition(rest[i+1:]) {
				return ""
			}
			return rest[:i]
		}
	}
	return rest
}

// isPartition reports whether token is a partition number.
func isPartition(token string) bool {
	if token == "" || len(token) > 2 {
		return false
	}
	for i := 0; i < len(token); i++ {
		if token[i] < '0' || token[i] > '9' {
			return false
		}
	}
	return true
}

// IsMember reports whether subject is a membership event subject, as
// published or as stored.
func IsMember(subject string) bool { return hasPrefix(subject, memberPrefix) }

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
