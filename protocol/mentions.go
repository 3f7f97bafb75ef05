package protocol

import "slices"

// Mute levels of the mute request (Request.Level) and of a conversation
// as its member sees it (Conversation.Mute, omitted for MuteNone).
const (
	// MuteAll silences every push notification of the conversation.
	MuteAll = "all"
	// MuteMentions pushes only the messages that mention the user (by id
	// or with MentionAll).
	MuteMentions = "mentions"
	// MuteNone unmutes: every message is pushed as usual.
	MuteNone = "none"
)

// ValidMuteLevel reports whether level is one of the mute levels.
func ValidMuteLevel(level string) bool {
	return level == MuteAll || level == MuteMentions || level == MuteNone
}

// MentionChecker is what CheckMentions reads of the conversation a message
// is sent to.
type MentionChecker struct {
	// IsMember reports whether uid is a member of the conversation.
	IsMember func(uid string) bool
	// MayMentionAll says whether the sender may use MentionAll: the owner
	// or an admin of a group.
	MayMentionAll bool
}

// CheckMentions validates the mentions of a message about to be sent and
// returns them without repeats, in their order. More than MaxMentions is
// too_large (like every other limit of a request), a mention that is not a
// member's id is bad_request naming it, MentionAll from a sender who may
// not use it is forbidden. Mentions go only with a plain message.
func CheckMentions(mentions []string, kind string, c MentionChecker) ([]string, *Error) {
	if len(mentions) == 0 {
		return nil, nil
	}
	if kind != KindMessage {
		return nil, Errorf(CodeBadRequest, "mentions go only with a plain message, not a %s", kind)
	}
	if len(mentions) > MaxMentions {
		return nil, Errorf(CodeTooLarge, "%d mentions; at most %d", len(mentions), MaxMentions)
	}
	out := make([]string, 0, len(mentions))
	for _, m := range mentions {
		switch {
		case slices.Contains(out, m):
			continue
		case m == MentionAll:
			if !c.MayMentionAll {
				return nil, Errorf(CodeForbidden, "only the owner or an admin of a group may mention %s", MentionAll)
			}
		case !ValidID(m):
			return nil, Errorf(CodeBadRequest, "mention %q is not a user id", m)
		case !c.IsMember(m):
			return nil, Errorf(CodeBadRequest, "mention %q is not a member of this conversation", m)
		}
		out = append(out, m)
	}
	return out, nil
}

// Mentions reports whether a message with mentions mentions uid: by id, or
// with MentionAll.
func Mentions(mentions []string, uid string) bool {
	for _, m := range mentions {
		if m == uid || m == MentionAll {
			return true
		}
	}
	return false
}
