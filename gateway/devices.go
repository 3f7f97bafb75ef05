package gateway

import (
	"context"

	"github.com/natter-chat/natter/protocol"
)

// deviceOK answers register_device: ok, with the device's id added.
type deviceOK struct {
	Type     string `json:"type"`
	ID       string `json:"id,omitempty"`
	DeviceID string `json:"device_id"`
}

// registerDevice records a device for push notifications. The platform
// and token are checked by Devices, which knows the providers.
func (sess *session) registerDevice(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	d, err := sess.srv.devices.Register(ctx, sess.user, req.Platform, req.Token)
	if err != nil {
		return nil, sess.fail(err)
	}
	return &deviceOK{Type: protocol.TypeOK, ID: req.ID, DeviceID: d.ID}, nil
}

// unregisterDevice removes devices by device_id or token; removing one
// that is not there is fine, so a retry after a lost reply succeeds.
func (sess *session) unregisterDevice(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if req.DeviceID == "" && req.Token == "" {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "name the device with device_id or token")
	}
	if err := sess.srv.devices.Unregister(ctx, sess.user, req.DeviceID, req.Token); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

// devices lists the user's devices, without their tokens.
func (sess *session) devices(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	ds, err := sess.srv.devices.List(ctx, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	out := &protocol.DevicesFrame{Type: protocol.TypeDevices, ID: req.ID, Devices: make([]*protocol.Device, len(ds))}
	for i, d := range ds {
		out.Devices[i] = &protocol.Device{DeviceID: d.ID, Platform: d.Platform, Added: protocol.FormatTime(d.Added)}
	}
	return out, nil
}

// mute sets the user's mute level of a conversation (mentions.go decides
// what the request means).
func (sess *session) mute(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if err := sess.checkConv(ctx, req.Conv); err != nil {
		return nil, err
	}
	level, until, perr := muteRequest(req)
	if perr != nil {
		return nil, perr
	}
	if err := sess.srv.devices.Mute(ctx, sess.user, req.Conv, level, until); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}
