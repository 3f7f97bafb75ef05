package gateway

import (
	"context"
	"slices"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Mentions and mute levels (docs/protocol.md, "Mentions"). A send with
// mentions reads the conversation's document once to check them against
// the members; a send without any reads nothing more than before.

// checkMentions validates the mentions of req, sent by the user in conv,
// and returns them as the envelope stores them.
func (sess *session) checkMentions(ctx context.Context, req *protocol.Request) ([]string, *protocol.Error) {
	if len(req.Mentions) == 0 {
		return nil, nil
	}
	if len(req.Mentions) > protocol.MaxMentions || req.Kind != protocol.KindMessage {
		// Refused before any read.
		return protocol.CheckMentions(req.Mentions, req.Kind, protocol.MentionChecker{})
	}
	d, err := sess.srv.convs.Get(ctx, req.Conv, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	members := d.SortedMembers()
	return protocol.CheckMentions(req.Mentions, req.Kind, protocol.MentionChecker{
		IsMember: func(uid string) bool {
			_, ok := slices.BinarySearch(members, uid)
			return ok
		},
		MayMentionAll: mayMentionAll(d, sess.user),
	})
}

// mayMentionAll reports whether uid is the owner or an admin of the group
// d: in a direct conversation both are plain members.
func mayMentionAll(d Conversation, uid string) bool {
	role := d.Role(uid)
	return role == protocol.RoleOwner || role == protocol.RoleAdmin
}

// muteRequest reads the level and the end of a mute request. A level
// without until lasts until changed; until alone (the request before mute
// levels) mutes everything until then, and neither unmutes. A past until
// unmutes whatever the level.
func muteRequest(req *protocol.Request) (string, time.Time, *protocol.Error) {
	var until time.Time
	if req.Until != nil {
		t, err := time.Parse(time.RFC3339, *req.Until)
		if err != nil {
			return "", time.Time{}, protocol.Errorf(protocol.CodeBadRequest, "until must be an RFC 3339 time or null")
		}
		until = t
	}
	level := req.Level
	switch {
	case level == "" && until.IsZero():
		level = protocol.MuteNone
	case level == "":
		level = protocol.MuteAll
	case !protocol.ValidMuteLevel(level):
		return "", time.Time{}, protocol.Errorf(protocol.CodeBadRequest, `level must be "all", "mentions" or "none"`)
	}
	return level, until, nil
}

// muteOf returns the user's mute level of conv as the conversation frame
// carries it: empty when not muted.
func (sess *session) muteOf(ctx context.Context, conv string) (string, error) {
	level, err := sess.srv.devices.MuteLevel(ctx, sess.user, conv)
	if err != nil || level == protocol.MuteNone {
		return "", err
	}
	return level, nil
}
