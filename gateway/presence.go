package gateway

import (
	"context"
	"encoding/json"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// maxPresenceQuery bounds the users one presence query may name.
const maxPresenceQuery = 500

// typing tells the other members, through the fan-out, that the user is
// typing. Without an id nothing is answered: clients send it often.
func (sess *session) typing(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	pending, perr := sess.member(ctx, req.Conv)
	if perr != nil {
		return nil, perr
	}
	// The recipient of a message request shares no typing until
	// accepting it.
	if !pending {
		data, _ := json.Marshal(schema.TypingNotice{User: sess.user, Except: sess.blockedByMe()})
		if err := sess.srv.nc.Publish(schema.ConvTyping(req.Conv), data); err != nil {
			return nil, sess.fail(err)
		}
	}
	if protocol.QuietOnSuccess(req) {
		return nil, nil
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

// read moves the user's read marker forwards and tells the members.
func (sess *session) read(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if req.Seq < 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "seq must be a non-negative integer")
	}
	pending, perr := sess.member(ctx, req.Conv)
	if perr != nil {
		return nil, perr
	}
	last, err := sess.srv.msgs.Last(ctx, req.Conv)
	if err != nil {
		return nil, sess.fail(err)
	}
	seq := min(uint64(req.Seq), last)
	// A read at or below what the user sent is no move.
	if err := sess.srv.own.settle(ctx, sess.user, req.Conv); err != nil {
		return nil, sess.fail(err)
	}
	moved, err := sess.srv.markers.MarkRead(ctx, req.Conv, sess.user, seq)
	if err != nil {
		return nil, sess.fail(err)
	}
	// The recipient of a message request sends no read receipts until
	// accepting it.
	if moved && !pending {
		data, _ := json.Marshal(schema.ReadNotice{User: sess.user, Seq: seq, Except: sess.blockedByMe()})
		if err := sess.srv.nc.Publish(schema.ConvRead(req.Conv), data); err != nil {
			return nil, sess.fail(err)
		}
	}
	if moved {
		// The user's other devices show the conversation read.
		sess.pushInboxItem(ctx, req.Conv)
	}
	if protocol.QuietOnSuccess(req) {
		return nil, nil
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

// presenceFrame answers a presence query.
type presenceFrame struct {
	Type  string                    `json:"type"`
	ID    string                    `json:"id,omitempty"`
	Users map[string]presenceAnswer `json:"users"`
}

type presenceAnswer struct {
	Online   bool   `json:"online"`
	Devices  int    `json:"devices,omitempty"`
	LastSeen string `json:"last_seen,omitempty"`
}

// presence answers for the users that share a conversation with the asker;
// the others are left out of the reply.
func (sess *session) presence(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if len(req.Users) > maxPresenceQuery {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "ask about at most %d users at once", maxPresenceQuery)
	}
	if !validIDs(req.Users) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "users must match [A-Za-z0-9_-]{1,64}")
	}
	mine, err := sess.srv.convs.UserConversations(ctx, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	out := presenceFrame{Type: protocol.TypePresence, ID: req.ID, Users: make(map[string]presenceAnswer, len(req.Users))}
	for _, u := range req.Users {
		if _, done := out.Users[u]; done {
			continue
		}
		shares, err := sess.srv.convs.Shares(ctx, sess.user, mine, u)
		if err != nil {
			return nil, sess.fail(err)
		}
		if !shares {
			continue
		}
		hidden, perr := sess.hiddenFrom(ctx, u)
		if perr != nil {
			return nil, perr
		}
		if hidden {
			continue
		}
		st, err := sess.srv.presence.State(ctx, u)
		if err != nil {
			return nil, sess.fail(err)
		}
		a := presenceAnswer{Online: st.Online}
		if st.Online {
			a.Devices = st.Devices
		} else if !st.LastSeen.IsZero() {
			a.LastSeen = protocol.FormatTime(st.LastSeen)
		}
		out.Users[u] = a
	}
	return &out, nil
}
