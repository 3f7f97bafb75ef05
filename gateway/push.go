package gateway

import (
	"context"
	"time"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/webpush"
)

// deviceOK answers register_device: ok, with the device's id added.
type deviceOK struct {
	Type     string `json:"type"`
	ID       string `json:"id,omitempty"`
	DeviceID string `json:"device_id"`
}

// pushStore binds the PUSH bucket for one request. These requests are
// rare, so a bucket lookup each time is cheaper than another dependency
// every gateway must be built with.
func (sess *session) pushStore(ctx context.Context) (*pushnotify.Store, *protocol.Error) {
	kv, err := sess.srv.js.KeyValue(ctx, schema.BucketPush)
	if err != nil {
		return nil, sess.fail(err)
	}
	return pushnotify.NewStore(pushnotify.StoreConfig{Now: sess.srv.cfg.Now}, kv), nil
}

// registerDevice records a device for push notifications.
func (sess *session) registerDevice(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	switch req.Platform {
	case pushnotify.PlatformAPNs, pushnotify.PlatformFCM, pushnotify.PlatformWebPush:
	default:
		return nil, protocol.Errorf(protocol.CodeBadRequest, `platform must be "apns", "fcm" or "webpush"`)
	}
	if req.Token == "" || len(req.Token) > pushnotify.MaxTokenBytes {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "token must be 1 to %d bytes", pushnotify.MaxTokenBytes)
	}
	if req.Platform == pushnotify.PlatformWebPush {
		if _, err := webpush.ParseSubscription(req.Token); err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "token is not a Web Push subscription: %v", err)
		}
	}
	store, perr := sess.pushStore(ctx)
	if perr != nil {
		return nil, perr
	}
	d, err := store.Register(ctx, sess.user, req.Platform, req.Token)
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
	store, perr := sess.pushStore(ctx)
	if perr != nil {
		return nil, perr
	}
	if _, err := store.Remove(ctx, sess.user, func(d pushnotify.Device) bool {
		return (req.DeviceID == "" || d.ID == req.DeviceID) && (req.Token == "" || d.Token == req.Token)
	}); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

// devices lists the user's devices, without their tokens.
func (sess *session) devices(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	store, perr := sess.pushStore(ctx)
	if perr != nil {
		return nil, perr
	}
	ds, err := store.Devices(ctx, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	out := &protocol.DevicesFrame{Type: protocol.TypeDevices, ID: req.ID, Devices: make([]*protocol.Device, len(ds))}
	for i, d := range ds {
		out.Devices[i] = &protocol.Device{DeviceID: d.ID, Platform: d.Platform, Added: protocol.FormatTime(d.Added)}
	}
	return out, nil
}

// mute silences a conversation's push notifications for the user until a
// time; null, a missing until or a past time unmutes.
func (sess *session) mute(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if err := sess.checkConv(ctx, req.Conv); err != nil {
		return nil, err
	}
	var until time.Time
	if req.Until != nil {
		t, err := time.Parse(time.RFC3339, *req.Until)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "until must be an RFC 3339 time or null")
		}
		until = t
	}
	store, perr := sess.pushStore(ctx)
	if perr != nil {
		return nil, perr
	}
	if err := store.Mute(ctx, sess.user, req.Conv, until); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}
