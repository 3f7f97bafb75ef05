package client

import (
	"context"
	"fmt"

	"github.com/natter-chat/natter/protocol"
)

// Push devices (docs/protocol.md, "register_device", "unregister_device",
// "devices").

// Push platforms a device registers for.
const (
	PlatformAPNs    = "apns"
	PlatformFCM     = "fcm"
	PlatformWebPush = "webpush"
)

// RegisterDevice registers a push device of the user: platform is
// PlatformAPNs (token: the device token, hex), PlatformFCM (the
// registration token) or PlatformWebPush (the subscription JSON, as
// PushSubscription.toJSON gives it). It returns the device's id, the
// fingerprint the server lists it by; registering the same token again
// returns the same id.
func (c *Client) RegisterDevice(ctx context.Context, platform, token string) (string, error) {
	var out struct {
		DeviceID string `json:"device_id"`
	}
	if err := c.call(ctx, protocol.Request{Type: protocol.TypeRegisterDevice, Platform: platform, Token: token}, protocol.TypeOK, &out); err != nil {
		return "", err
	}
	if out.DeviceID == "" {
		return "", fmt.Errorf("client: register_device answered without device_id")
	}
	return out.DeviceID, nil
}

// UnregisterDevice removes the user's device with deviceID; removing one
// that is not registered succeeds too.
func (c *Client) UnregisterDevice(ctx context.Context, deviceID string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeUnregisterDevice, DeviceID: deviceID}, protocol.TypeOK, nil)
}

// UnregisterToken removes the user's device registered with token (when
// the app knows the token, not the id).
func (c *Client) UnregisterToken(ctx context.Context, token string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeUnregisterDevice, Token: token}, protocol.TypeOK, nil)
}

// Devices lists the user's devices, oldest first; tokens are never sent
// back.
func (c *Client) Devices(ctx context.Context) ([]*protocol.Device, error) {
	var f protocol.DevicesFrame
	if err := c.call(ctx, protocol.Request{Type: protocol.TypeDevices}, protocol.TypeDevices, &f); err != nil {
		return nil, err
	}
	return f.Devices, nil
}
