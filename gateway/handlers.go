package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/protocol"
)

// handle answers one request of an authenticated session. It returns the
// reply frame, or nil when there is none. The handlers live by domain:
// conversations.go, messages.go, presence.go (read markers and typing too)
// and devices.go.
func (sess *session) handle(ctx context.Context, req *protocol.Request) any {
	var resp any
	var err *protocol.Error
	switch req.Type {
	case protocol.TypePing:
		resp = &protocol.OK{Type: protocol.TypePong, ID: req.ID}
	case protocol.TypeHello:
		if len(req.Device) > protocol.MaxDeviceBytes {
			err = protocol.Errorf(protocol.CodeBadRequest, "device label over %d bytes", protocol.MaxDeviceBytes)
			break
		}
		if req.Device != "" {
			sess.device = req.Device
		}
		sess.welcome(req.ID)
		return nil
	case protocol.TypeCreate:
		resp, err = sess.create(ctx, req)
	case protocol.TypeAddMember:
		resp, err = sess.addMember(ctx, req)
	case protocol.TypeRemoveMember:
		resp, err = sess.removeMember(ctx, req)
	case protocol.TypeLeave:
		resp, err = sess.leave(ctx, req)
	case protocol.TypeMembers:
		resp, err = sess.members(ctx, req)
	case protocol.TypeConversations:
		resp, err = sess.conversations(ctx, req)
	case protocol.TypeSend:
		resp, err = sess.send(ctx, req)
	case protocol.TypeSync:
		resp, err = sess.sync(ctx, req)
	case protocol.TypeThread:
		resp, err = sess.thread(ctx, req)
	case protocol.TypeHistory:
		resp, err = sess.history(ctx, req)
	case protocol.TypeTyping:
		resp, err = sess.typing(ctx, req)
	case protocol.TypeRead:
		resp, err = sess.read(ctx, req)
	case protocol.TypePresence:
		resp, err = sess.presence(ctx, req)
	case protocol.TypeRegisterDevice:
		resp, err = sess.registerDevice(ctx, req)
	case protocol.TypeUnregisterDevice:
		resp, err = sess.unregisterDevice(ctx, req)
	case protocol.TypeDevices:
		resp, err = sess.devices(ctx, req)
	case protocol.TypeMute:
		resp, err = sess.mute(ctx, req)
	case protocol.TypeBlock:
		resp, err = sess.block(ctx, req)
	case protocol.TypeUnblock:
		resp, err = sess.unblock(ctx, req)
	case protocol.TypeBlocked:
		resp, err = sess.blocked(ctx, req)
	case protocol.TypeReauth:
		resp, err = sess.reauth(ctx, req)
	case protocol.TypeAccept:
		resp, err = sess.accept(ctx, req)
	case protocol.TypeDecline:
		resp, err = sess.decline(ctx, req)
	case protocol.TypeHide:
		resp, err = sess.hide(ctx, req)
	case protocol.TypeSettings:
		resp, err = sess.settings(ctx, req)
	case protocol.TypeUpload:
		resp, err = sess.upload(ctx, req)
	case protocol.TypeUpdate:
		resp, err = sess.update(ctx, req)
	case protocol.TypeSetRole:
		resp, err = sess.setRole(ctx, req)
	case protocol.TypeTransfer:
		resp, err = sess.transfer(ctx, req)
	case protocol.TypeUnban:
		resp, err = sess.unban(ctx, req)
	case protocol.TypeBanned:
		resp, err = sess.banned(ctx, req)
	case protocol.TypeSearch:
		resp, err = sess.search(ctx, req)
	case protocol.TypeDelivered:
		resp, err = sess.delivered(ctx, req)
	case protocol.TypeReceipts:
		resp, err = sess.receipts(ctx, req)
	case protocol.TypeDeleteAccount:
		resp, err = sess.deleteAccount(ctx, req)
	case protocol.TypeExport:
		resp, err = sess.export(ctx, req)
	default:
		err = protocol.Errorf(protocol.CodeBadRequest, "unknown type %q", req.Type)
	}
	if err != nil {
		err.Type = protocol.TypeError
		err.ID = req.ID
		return err
	}
	return resp
}

func (sess *session) actor() Actor {
	return Actor{User: sess.user, Session: sess.id}
}

// checkConv validates a conversation id and that the user is a member.
func (sess *session) checkConv(ctx context.Context, conv string) *protocol.Error {
	if !protocol.ValidID(conv) {
		return protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	ok, err := sess.srv.convs.IsMember(ctx, conv, sess.user)
	if err != nil {
		return sess.fail(err)
	}
	if !ok {
		return toProtocol(ErrForbidden)
	}
	return nil
}

// toProtocol maps an error of the parts behind the gateway to its code.
func toProtocol(err error) *protocol.Error {
	switch {
	case errors.Is(err, ErrRefused):
		return protocol.Errorf(protocol.CodeForbidden, "%s", err.Error())
	case errors.Is(err, ErrForbidden):
		return protocol.Errorf(protocol.CodeForbidden, "not a member of this conversation")
	case errors.Is(err, ErrBadRequest):
		return protocol.Errorf(protocol.CodeBadRequest, "%s", err.Error())
	case errors.Is(err, ErrNotFound):
		return protocol.Errorf(protocol.CodeNotFound, "%s", err.Error())
	case errors.Is(err, ErrTooLarge):
		return protocol.Errorf(protocol.CodeTooLarge, "%s", err.Error())
	case errors.Is(err, ErrConflict):
		return protocol.Errorf(protocol.CodeConflict, "%s", err.Error())
	case errors.Is(err, errUnavailable):
		return protocol.Errorf(protocol.CodeUnavailable, "the message store is electing a leader; retry with the same client_id")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, nats.ErrTimeout):
		return protocol.Errorf(protocol.CodeUnavailable, "the server did not answer in time; retry")
	case errors.Is(err, nats.ErrNoResponders):
		return protocol.Errorf(protocol.CodeUnavailable, "a backend service is not running; retry")
	default:
		return protocol.Errorf(protocol.CodeInternal, "internal error")
	}
}

func (sess *session) fail(err error) *protocol.Error {
	pe := toProtocol(err)
	if pe.Code == protocol.CodeInternal || pe.Code == protocol.CodeUnavailable {
		sess.srv.cfg.Logger.Warn("request failed", "user", sess.user, "err", err)
	}
	return pe
}

func validIDs(ids []string) bool {
	for _, id := range ids {
		if !protocol.ValidID(id) {
			return false
		}
	}
	return true
}

// pageLimit applies the protocol's paging rule: missing or ≤ 0 means the
// default, above the cap means the cap.
func pageLimit(limit, maxLimit int) int {
	if limit <= 0 {
		return min(protocol.DefaultLimit, maxLimit)
	}
	return min(limit, maxLimit)
}

func parseSeq(raw json.RawMessage) (uint64, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, true
	}
	v, err := strconv.ParseUint(string(raw), 10, 64)
	return v, err == nil
}
