package fcm_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/fcm"
	"github.com/natter-chat/natter/pushnotify/pushtest"
)

const (
	project     = "natter-test"
	clientEmail = "push@natter-test.iam.gserviceaccount.com"
	regToken    = "fcm-registration-token:APA91bH-example"
)

func newClient(t *testing.T) (*fcm.Client, *pushtest.FCM) {
	t.Helper()
	t.Cleanup(natstest.CheckGoroutines(t))
	fake := pushtest.NewFCM(t, project, clientEmail)
	c, err := fcm.New(fcm.Config{
		Credentials: fake.Credentials(),
		Endpoint:    fake.URL(),
		TokenURL:    fake.TokenURL(),
		HTTPClient:  fake.Client(),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c, fake
}

// state is how many access tokens were issued, messages accepted and
// messages answered 200.
func state(f *pushtest.FCM) (issued, messages, delivered int) {
	return f.Issued(), len(f.Messages()), len(f.Delivered())
}

func note() *pushnotify.Notification {
	return &pushnotify.Notification{
		Platform:   pushnotify.PlatformFCM,
		Token:      regToken,
		Title:      "Team",
		Body:       "Ann: hi",
		Conv:       "g_team",
		Seq:        42,
		Count:      1,
		CollapseID: "g_team",
		Data:       map[string]string{"conv": "g_team", "seq": "42", "from": "reserved"},
		TTL:        time.Hour,
	}
}

func TestSendDelivers(t *testing.T) {
	c, fake := newClient(t)
	for range 2 {
		if err := c.Send(t.Context(), note()); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	issued, messages, delivered := state(fake)
	if issued != 1 || messages != 2 || delivered != 2 {
		t.Fatalf("tokens issued %d, messages %d, delivered %d; want 1, 2, 2", issued, messages, delivered)
	}
	got, _ := json.Marshal(fake.Messages()[0].Message)
	want := `{"android":{"collapse_key":"g_team","notification":{"tag":"g_team"},"priority":"HIGH","ttl":"3600s"},` +
		`"apns":{"headers":{"apns-collapse-id":"g_team","apns-priority":"10"},"payload":{"aps":{"thread-id":"g_team"}}},` +
		`"data":{"conv":"g_team","seq":"42"},"notification":{"body":"Ann: hi","title":"Team"},"token":"` + regToken + `"}`
	if string(got) != want {
		t.Errorf("message\n got %s\nwant %s", got, want)
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name        string
		reply       pushtest.Reply
		wantInvalid bool
		wantRetry   bool
		wantAfter   time.Duration
		wantReason  string
	}{
		{
			name:        "404 UNREGISTERED",
			reply:       pushtest.Reply{Status: 404, Body: `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`},
			wantInvalid: true, wantReason: "UNREGISTERED",
		},
		{
			name:        "400 INVALID_ARGUMENT on the token",
			reply:       pushtest.Reply{Status: 400, Body: `{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]}]}}`},
			wantInvalid: true, wantReason: "INVALID_ARGUMENT",
		},
		{
			name:       "400 INVALID_ARGUMENT elsewhere is permanent",
			reply:      pushtest.Reply{Status: 400, Body: `{"error":{"code":400,"message":"Invalid value at 'message.data[0].value'","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data[0].value","description":"Invalid value"}]}]}}`},
			wantReason: "INVALID_ARGUMENT",
		},
		{
			name:       "403 SENDER_ID_MISMATCH is permanent",
			reply:      pushtest.Reply{Status: 403, Body: `{"error":{"code":403,"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"SENDER_ID_MISMATCH"}]}}`},
			wantReason: "SENDER_ID_MISMATCH",
		},
		{
			name:      "429 QUOTA_EXCEEDED with Retry-After",
			reply:     pushtest.Reply{Status: 429, Header: map[string]string{"Retry-After": "12"}, Body: `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}`},
			wantRetry: true, wantAfter: 12 * time.Second, wantReason: "QUOTA_EXCEEDED",
		},
		{
			name:      "503 UNAVAILABLE",
			reply:     pushtest.Reply{Status: 503, Body: `{"error":{"code":503,"status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNAVAILABLE"}]}}`},
			wantRetry: true, wantReason: "UNAVAILABLE",
		},
		{
			name:      "500 without a body",
			reply:     pushtest.Reply{Status: 500},
			wantRetry: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fake := newClient(t)
			fake.Script(tt.reply)
			err := c.Send(t.Context(), note())
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if got := errors.Is(err, pushnotify.ErrInvalidToken); got != tt.wantInvalid {
				t.Errorf("ErrInvalidToken = %v, want %v (%v)", got, tt.wantInvalid, err)
			}
			var re *pushnotify.RetryError
			if got := errors.As(err, &re); got != tt.wantRetry {
				t.Fatalf("retryable = %v, want %v (%v)", got, tt.wantRetry, err)
			}
			if re != nil && re.After != tt.wantAfter {
				t.Errorf("RetryAfter = %s, want %s", re.After, tt.wantAfter)
			}
			var se *pushnotify.StatusError
			if !errors.As(err, &se) || se.Status != tt.reply.Status || se.Reason != tt.wantReason {
				t.Errorf("StatusError = %+v, want %d %s", se, tt.reply.Status, tt.wantReason)
			}
		})
	}
}

func TestRetryAfterQuota(t *testing.T) {
	c, fake := newClient(t)
	fake.Script(pushtest.Reply{Status: 429, Header: map[string]string{"Retry-After": "2"}, Body: `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}`})
	var waits []time.Duration
	p := pushnotify.Policy{Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	if err := pushnotify.Retry(t.Context(), c, note(), p); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	_, messages, delivered := state(fake)
	if messages != 2 || delivered != 1 || len(waits) != 1 || waits[0] != 2*time.Second {
		t.Fatalf("messages %d, delivered %d, waits %v; want 2, 1, [2s]", messages, delivered, waits)
	}
}

func TestRevokedAccessTokenIsReplaced(t *testing.T) {
	c, fake := newClient(t)
	if err := c.Send(t.Context(), note()); err != nil {
		t.Fatal(err)
	}
	fake.Revoke()
	if err := c.Send(t.Context(), note()); err != nil {
		t.Fatalf("Send after revocation: %v", err)
	}
	if issued, _, delivered := state(fake); issued != 2 || delivered != 2 {
		t.Fatalf("tokens issued %d, delivered %d; want 2, 2", issued, delivered)
	}
}

func TestNewRejectsBadCredentials(t *testing.T) {
	for name, creds := range map[string]string{
		"not JSON":      "nope",
		"user account":  `{"type":"authorized_user"}`,
		"no project id": `{"type":"service_account","private_key":"x","client_email":"a@b"}`,
	} {
		if _, err := fcm.New(fcm.Config{Credentials: []byte(creds)}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
