package apns_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/apns"
	"github.com/natter-chat/natter/pushnotify/pushtest"
)

const (
	teamID   = "TEAM123456"
	keyID    = "KEY1234567"
	topic    = "chat.natter.app"
	devToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
)

// requests returns what the fake accepted and how many it answered 200.
func requests(f *pushtest.APNs) ([]pushtest.APNsRequest, int) {
	return f.Requests(), len(f.Delivered())
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type setup struct {
	client *apns.Client
	fake   *pushtest.APNs
	clock  *clock
}

func newSetup(t *testing.T) setup {
	t.Helper()
	t.Cleanup(natstest.CheckGoroutines(t))
	clk := &clock{t: time.Now()}
	fake := pushtest.NewAPNs(t, pushtest.APNsConfig{TeamID: teamID, KeyID: keyID, Topic: topic, Now: clk.Now})
	c, err := apns.New(apns.Config{
		Endpoint:  fake.URL(),
		Topic:     topic,
		TeamID:    teamID,
		KeyID:     keyID,
		Key:       fake.Key(),
		TLSConfig: fake.TLSConfig(),
		Now:       clk.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return setup{client: c, fake: fake, clock: clk}
}

func note() *pushnotify.Notification {
	badge := 3
	return &pushnotify.Notification{
		Platform:   pushnotify.PlatformAPNs,
		Token:      devToken,
		Title:      "Team",
		Body:       "Ann: hi",
		Conv:       "g_team",
		Seq:        42,
		Count:      1,
		CollapseID: "g_team",
		Badge:      &badge,
		Data:       map[string]string{"conv": "g_team", "seq": "42"},
		TTL:        time.Hour,
	}
}

func TestSendDelivers(t *testing.T) {
	s := newSetup(t)
	if err := s.client.Send(t.Context(), note()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs, ok := requests(s.fake)
	if len(reqs) != 1 || ok != 1 {
		t.Fatalf("fake saw %d requests, %d delivered; want 1", len(reqs), ok)
	}
	r := reqs[0]
	if got := r.Header.Get("apns-collapse-id"); got != "g_team" {
		t.Errorf("apns-collapse-id = %q", got)
	}
	if got := r.Header.Get("apns-priority"); got != "10" {
		t.Errorf("apns-priority = %q, want 10", got)
	}
	if got, want := r.Header.Get("apns-expiration"), s.clock.Now().Add(time.Hour).Unix(); got != itoa(want) {
		t.Errorf("apns-expiration = %q, want %d", got, want)
	}
	want := `{"aps":{"alert":{"body":"Ann: hi","title":"Team"},"badge":3,"sound":"default","thread-id":"g_team"},"conv":"g_team","seq":"42"}`
	if got := mustJSON(t, r.Body); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}

	// A private, normal-urgency notification with a long collapse id.
	n := note()
	n.Private, n.Urgency, n.Badge, n.TTL = true, pushnotify.UrgencyNormal, nil, 0
	n.CollapseID = strings.Repeat("x", 100)
	if err := s.client.Send(t.Context(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs, _ = requests(s.fake)
	r = reqs[1]
	aps := r.Body["aps"].(map[string]any)
	if aps["mutable-content"] != float64(1) || aps["badge"] != nil {
		t.Errorf("private aps = %v, want mutable-content 1 and no badge", aps)
	}
	if r.Header.Get("apns-priority") != "5" || r.Header.Get("apns-expiration") != "" || len(r.Header.Get("apns-collapse-id")) != 64 {
		t.Errorf("headers %v", r.Header)
	}
	if reqs[0].JWT != reqs[1].JWT {
		t.Error("the provider token was not reused")
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name        string
		reply       pushtest.Reply
		wantInvalid bool
		wantRetry   bool
		wantAfter   time.Duration
	}{
		{name: "410 Unregistered", reply: pushtest.Reply{Status: 410, Reason: "Unregistered"}, wantInvalid: true},
		{name: "400 BadDeviceToken", reply: pushtest.Reply{Status: 400, Reason: "BadDeviceToken"}, wantInvalid: true},
		{name: "400 DeviceTokenNotForTopic", reply: pushtest.Reply{Status: 400, Reason: "DeviceTokenNotForTopic"}, wantInvalid: true},
		{name: "400 BadPayload is permanent", reply: pushtest.Reply{Status: 400, Reason: "PayloadTooLarge"}},
		{name: "403 InvalidProviderToken is permanent", reply: pushtest.Reply{Status: 403, Reason: "InvalidProviderToken"}},
		{name: "429 with Retry-After", reply: pushtest.Reply{Status: 429, Reason: "TooManyRequests", Header: map[string]string{"Retry-After": "7"}}, wantRetry: true, wantAfter: 7 * time.Second},
		{name: "500", reply: pushtest.Reply{Status: 500, Reason: "InternalServerError"}, wantRetry: true},
		{name: "503", reply: pushtest.Reply{Status: 503, Reason: "ServiceUnavailable"}, wantRetry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			s.fake.Script(tt.reply)
			err := s.client.Send(t.Context(), note())
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
			if !errors.As(err, &se) || se.Status != tt.reply.Status || se.Reason != tt.reply.Reason {
				t.Errorf("StatusError = %+v, want %d %s", se, tt.reply.Status, tt.reply.Reason)
			}
		})
	}
}

func TestRetryAfterUnavailable(t *testing.T) {
	s := newSetup(t)
	s.fake.Script(pushtest.Reply{Status: 503, Reason: "ServiceUnavailable"})
	var waits []time.Duration
	p := pushnotify.Policy{Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	if err := pushnotify.Retry(t.Context(), s.client, note(), p); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	reqs, ok := requests(s.fake)
	if len(reqs) != 2 || ok != 1 || len(waits) != 1 {
		t.Fatalf("%d requests, %d delivered, %d waits; want 2, 1, 1", len(reqs), ok, len(waits))
	}
}

func TestExpiredProviderTokenIsRefreshed(t *testing.T) {
	s := newSetup(t)
	if err := s.client.Send(t.Context(), note()); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(25 * time.Minute) // past Apple's 20-minute refresh floor
	s.fake.Script(pushtest.Reply{Status: 403, Reason: "ExpiredProviderToken"})
	if err := s.client.Send(t.Context(), note()); err != nil {
		t.Fatalf("Send after ExpiredProviderToken: %v", err)
	}
	reqs, ok := requests(s.fake)
	if len(reqs) != 3 || ok != 2 {
		t.Fatalf("%d requests, %d delivered; want 3, 2", len(reqs), ok)
	}
	if reqs[1].JWT != reqs[0].JWT || reqs[2].JWT == reqs[1].JWT || reqs[2].IAT <= reqs[1].IAT {
		t.Error("the retry did not carry a freshly signed token")
	}

	// A second ExpiredProviderToken in a row is not retried forever.
	s.fake.Script(pushtest.Reply{Status: 403, Reason: "ExpiredProviderToken"}, pushtest.Reply{Status: 403, Reason: "ExpiredProviderToken"})
	if err := s.client.Send(t.Context(), note()); err == nil {
		t.Fatal("Send succeeded after two ExpiredProviderToken answers")
	}
}

func TestTokenRefreshedBeforeAnHour(t *testing.T) {
	s := newSetup(t)
	for range 2 {
		if err := s.client.Send(t.Context(), note()); err != nil {
			t.Fatal(err)
		}
		s.clock.Advance(51 * time.Minute)
	}
	reqs, _ := requests(s.fake)
	if reqs[0].JWT == reqs[1].JWT {
		t.Fatal("a 51-minute-old token was reused")
	}
}

func TestMalformedTokenNeverSent(t *testing.T) {
	s := newSetup(t)
	n := note()
	n.Token = "../../etc"
	if err := s.client.Send(t.Context(), n); !errors.Is(err, pushnotify.ErrInvalidToken) {
		t.Fatalf("Send = %v, want ErrInvalidToken", err)
	}
	if reqs, _ := requests(s.fake); len(reqs) != 0 {
		t.Fatal("a malformed token reached the server")
	}
}

func TestNew(t *testing.T) {
	if _, err := apns.New(apns.Config{Topic: topic, TeamID: teamID, KeyID: keyID, Key: []byte("nope")}); err == nil {
		t.Error("New accepted a key that is not PEM")
	}
	if _, err := apns.New(apns.Config{Key: []byte("nope")}); err == nil {
		t.Error("New accepted a config without topic, team and key id")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
