package protocol

// Push notification request and reply types (docs/protocol.md, "Push
// notifications"). register_device and mute are TypeRegisterDevice and
// TypeMute in protocol.go.
const (
	// TypeUnregisterDevice removes a device by device_id or token.
	TypeUnregisterDevice = "unregister_device"
	// TypeDevices lists the user's devices, and names the reply.
	TypeDevices = "devices"
)

// Device is a registered device as its owner sees it: never the token,
// only DeviceID, a fingerprint of it.
type Device struct {
	// DeviceID is the first 16 hex digits of SHA-256(platform, 0x00,
	// token): a client can compute its own.
	DeviceID string `json:"device_id"`
	Platform string `json:"platform"`
	// Added is when the device was first registered, RFC 3339.
	Added string `json:"added"`
}

// DevicesFrame answers devices.
type DevicesFrame struct {
	Type    string    `json:"type"`
	ID      string    `json:"id,omitempty"`
	Devices []*Device `json:"devices"`
}
