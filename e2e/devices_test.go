package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

// TestDeviceCalls: the Go client's typed device calls over a real socket:
// register returns the documented fingerprint (the same for the same
// token), devices lists them oldest first without tokens, unregister by
// id and by token removes them, and a bad platform is bad_request.
func TestDeviceCalls(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	c := e.dial(t, "alice")
	tokA := "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	idA, err := c.RegisterDevice(ctx, client.PlatformAPNs, tokA)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(client.PlatformAPNs + "\x00" + tokA))
	if want := hex.EncodeToString(sum[:])[:16]; idA != want {
		t.Fatalf("device_id %q, want %q", idA, want)
	}
	if again, err := c.RegisterDevice(ctx, client.PlatformAPNs, tokA); err != nil || again != idA {
		t.Fatalf("registering again: %q, %v; want %q", again, err, idA)
	}
	idB, err := c.RegisterDevice(ctx, client.PlatformFCM, "fcm-registration-token-1")
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].DeviceID != idA || list[0].Platform != client.PlatformAPNs || list[1].DeviceID != idB || list[0].Added == "" {
		t.Fatalf("devices %+v %+v", list[0], list[len(list)-1])
	}
	if err := c.UnregisterDevice(ctx, idA); err != nil {
		t.Fatal(err)
	}
	if err := c.UnregisterToken(ctx, "fcm-registration-token-1"); err != nil {
		t.Fatal(err)
	}
	if list, err := c.Devices(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after unregistering both: %v, %v", list, err)
	}
	_, err = c.RegisterDevice(ctx, "pager", "x")
	wantCode(t, err, protocol.CodeBadRequest)
}
