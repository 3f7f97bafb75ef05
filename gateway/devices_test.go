package gateway

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/protocol"
)

func TestDevices(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.dial("alice"), h.dial("bob")
	register := func(platform, token string) *protocol.Request {
		return req(protocol.TypeRegisterDevice, func(r *protocol.Request) { r.Platform, r.Token = platform, token })
	}
	var ok struct {
		Type     string `json:"type"`
		DeviceID string `json:"device_id"`
	}
	mustDo(t, alice, register("apns", "tok-1"), &ok)
	if ok.Type != protocol.TypeOK || ok.DeviceID != "dev1" {
		t.Fatalf("register answered %+v", ok)
	}
	mustDo(t, alice, register("fcm", "tok-2"), nil)
	// The implementation's refusal reaches the client with its text.
	wantCode(t, do(t, alice, register("pager", "tok-3"), nil), protocol.CodeBadRequest, `platform "pager" is not one we push to`)

	var list protocol.DevicesFrame
	mustDo(t, alice, req(protocol.TypeDevices, nil), &list)
	added := protocol.FormatTime(h.devices.now)
	if len(list.Devices) != 2 || *list.Devices[0] != (protocol.Device{DeviceID: "dev1", Platform: "apns", Added: added}) ||
		list.Devices[1].Platform != "fcm" {
		t.Fatalf("devices %+v", list.Devices)
	}
	mustDo(t, bob, req(protocol.TypeDevices, nil), &list)
	if len(list.Devices) != 0 || list.Devices == nil {
		t.Fatalf("bob's devices %+v, want []", list.Devices)
	}

	wantCode(t, do(t, alice, req(protocol.TypeUnregisterDevice, nil), nil), protocol.CodeBadRequest, "device_id or token")
	mustDo(t, alice, req(protocol.TypeUnregisterDevice, func(r *protocol.Request) { r.DeviceID = "dev1" }), nil)
	mustDo(t, alice, req(protocol.TypeUnregisterDevice, func(r *protocol.Request) { r.Token = "tok-2" }), nil)
	// Again, as a retry after a lost reply would.
	mustDo(t, alice, req(protocol.TypeUnregisterDevice, func(r *protocol.Request) { r.Token = "tok-2" }), nil)
	mustDo(t, alice, req(protocol.TypeDevices, nil), &list)
	if len(list.Devices) != 0 {
		t.Fatalf("devices left %+v", list.Devices)
	}
}

func TestMute(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice")
	h.convs.add("g2", protocol.ConversationGroup, "bob", "bob")
	alice := h.dial("alice")
	mute := func(conv string, until *string) *protocol.Request {
		return req(protocol.TypeMute, func(r *protocol.Request) { r.Conv, r.Until = conv, until })
	}
	str := func(s string) *string { return &s }

	mustDo(t, alice, mute("g1", str("2026-05-06T07:08:09+02:00")), nil)
	if got, _ := h.devices.mute("alice", "g1"); got.level != protocol.MuteAll || !got.until.Equal(time.Date(2026, 5, 6, 5, 8, 9, 0, time.UTC)) {
		t.Fatalf("muted %+v; want level all until 05:08:09Z", got)
	}
	mustDo(t, alice, mute("g1", nil), nil)
	if got, ok := h.devices.mute("alice", "g1"); !ok || got.level != protocol.MuteNone || !got.until.IsZero() {
		t.Fatalf("unmute stored %+v, %v; want level none and the zero time", got, ok)
	}
	wantCode(t, do(t, alice, mute("g1", str("tomorrow")), nil), protocol.CodeBadRequest, "RFC 3339")
	wantCode(t, do(t, alice, mute("g2", nil), nil), protocol.CodeForbidden, "")
	if _, ok := h.devices.mute("alice", "g2"); ok {
		t.Fatal("a conversation of others was muted")
	}
}
