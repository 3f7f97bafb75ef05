package pushnotify_test

import (
	"errors"
	"testing"

	"github.com/natter-chat/natter/pushnotify"
)

func TestRouter(t *testing.T) {
	apns, fcm := &scriptedSender{}, &scriptedSender{errs: []error{pushnotify.ErrInvalidToken}}
	r := pushnotify.Router{pushnotify.PlatformAPNs: apns, pushnotify.PlatformFCM: fcm}
	if err := r.Send(t.Context(), &pushnotify.Notification{Platform: pushnotify.PlatformAPNs}); err != nil {
		t.Fatal(err)
	}
	if err := r.Send(t.Context(), &pushnotify.Notification{Platform: pushnotify.PlatformFCM}); !errors.Is(err, pushnotify.ErrInvalidToken) {
		t.Fatalf("fcm: %v", err)
	}
	if apns.calls != 1 || fcm.calls != 1 {
		t.Fatalf("calls apns %d fcm %d", apns.calls, fcm.calls)
	}
	err := r.Send(t.Context(), &pushnotify.Notification{Platform: pushnotify.PlatformWebPush})
	if err == nil || errors.Is(err, pushnotify.ErrRetryable) || errors.Is(err, pushnotify.ErrInvalidToken) {
		t.Fatalf("unconfigured platform: %v, want a permanent error", err)
	}
}
