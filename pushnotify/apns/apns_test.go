package apns_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/apns"
	"github.com/natter-chat/natter/pushnotify/internal/pushtest"
)

const (
	teamID   = "TEAM123456"
	keyID    = "KEY1234567"
	topic    = "chat.natter.app"
	devToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
)

// reply is one scripted answer of the fake APNs.
type reply struct {
	status int
	reason string
	header map[string]string
}

// fakeAPNs checks requests the way APNs does and answers from a script;
// when the script runs out it answers 200.
type fakeAPNs struct {
	t    *testing.T
	pub  *ecdsa.PublicKey
	now  func() time.Time
	srv  *httptest.Server
	mu   sync.Mutex
	next []reply
	reqs []seen // every request that passed the checks
	ok   int    // 200s answered
}

// seen is what the fake recorded of a request.
type seen struct {
	jwt    string
	iat    int64
	header http.Header
	body   map[string]any
}

func newFakeAPNs(t *testing.T, pub *ecdsa.PublicKey, now func() time.Time) *fakeAPNs {
	f := &fakeAPNs{t: t, pub: pub, now: now}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = true
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPNs) script(r ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = append(f.next, r...)
}

func (f *fakeAPNs) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	fail := func(status int, reason string) {
		t.Errorf("fake APNs rejects the request: %d %s", status, reason)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"reason": reason})
	}
	if r.ProtoMajor != 2 {
		fail(http.StatusBadRequest, "HTTP/2 required")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/3/device/"+devToken {
		fail(http.StatusNotFound, "BadPath "+r.Method+" "+r.URL.Path)
		return
	}
	auth, ok := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
	if !ok {
		fail(http.StatusForbidden, "MissingProviderToken")
		return
	}
	header, claims, err := pushtest.VerifyJWT(auth, f.pub)
	if err != nil {
		fail(http.StatusForbidden, "InvalidProviderToken: "+err.Error())
		return
	}
	iat, _ := pushtest.NumericClaim(claims, "iat")
	if header["kid"] != keyID || claims["iss"] != teamID || iat == 0 || f.now().Unix()-iat > 3600 {
		fail(http.StatusForbidden, "InvalidProviderToken: header or claims")
		return
	}
	if r.Header.Get("apns-topic") != topic {
		fail(http.StatusBadRequest, "BadTopic")
		return
	}
	if r.Header.Get("apns-push-type") != "alert" {
		fail(http.StatusBadRequest, "InvalidPushType")
		return
	}
	if p := r.Header.Get("apns-priority"); p != "10" && p != "5" {
		fail(http.StatusBadRequest, "BadPriority")
		return
	}
	if len(r.Header.Get("apns-collapse-id")) > 64 {
		fail(http.StatusBadRequest, "BadCollapseId")
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 4096 || json.Unmarshal(raw, &body) != nil {
		fail(http.StatusBadRequest, "PayloadTooLarge or BadPayload")
		return
	}
	aps, _ := body["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	if alert == nil || alert["title"] == nil || alert["body"] == nil {
		fail(http.StatusBadRequest, "PayloadEmpty")
		return
	}

	f.mu.Lock()
	f.reqs = append(f.reqs, seen{jwt: auth, iat: iat, header: r.Header.Clone(), body: body})
	rep := reply{status: http.StatusOK}
	if len(f.next) > 0 {
		rep, f.next = f.next[0], f.next[1:]
	}
	if rep.status == http.StatusOK {
		f.ok++
	}
	f.mu.Unlock()

	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("apns-id", "EC1BF194-B3B2-424A-89A9-5A918A6E7B3E")
	w.WriteHeader(rep.status)
	if rep.reason != "" {
		_ = json.NewEncoder(w).Encode(map[string]any{"reason": rep.reason})
	}
}

func (f *fakeAPNs) requests() ([]seen, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...), f.ok
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
	fake   *fakeAPNs
	clock  *clock
}

func newSetup(t *testing.T) setup {
	t.Helper()
	t.Cleanup(natstest.CheckGoroutines(t))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clk := &clock{t: time.Now()}
	fake := newFakeAPNs(t, &key.PublicKey, clk.Now)
	roots := x509.NewCertPool()
	roots.AddCert(fake.srv.Certificate())
	c, err := apns.New(apns.Config{
		Endpoint:  fake.srv.URL,
		Topic:     topic,
		TeamID:    teamID,
		KeyID:     keyID,
		Key:       p8,
		TLSConfig: &tls.Config{RootCAs: roots},
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
	reqs, ok := s.fake.requests()
	if len(reqs) != 1 || ok != 1 {
		t.Fatalf("fake saw %d requests, %d delivered; want 1", len(reqs), ok)
	}
	r := reqs[0]
	if got := r.header.Get("apns-collapse-id"); got != "g_team" {
		t.Errorf("apns-collapse-id = %q", got)
	}
	if got := r.header.Get("apns-priority"); got != "10" {
		t.Errorf("apns-priority = %q, want 10", got)
	}
	if got, want := r.header.Get("apns-expiration"), s.clock.Now().Add(time.Hour).Unix(); got != itoa(want) {
		t.Errorf("apns-expiration = %q, want %d", got, want)
	}
	want := `{"aps":{"alert":{"body":"Ann: hi","title":"Team"},"badge":3,"sound":"default","thread-id":"g_team"},"conv":"g_team","seq":"42"}`
	if got := mustJSON(t, r.body); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}

	// A private, normal-urgency notification with a long collapse id.
	n := note()
	n.Private, n.Urgency, n.Badge, n.TTL = true, pushnotify.UrgencyNormal, nil, 0
	n.CollapseID = strings.Repeat("x", 100)
	if err := s.client.Send(t.Context(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs, _ = s.fake.requests()
	r = reqs[1]
	aps := r.body["aps"].(map[string]any)
	if aps["mutable-content"] != float64(1) || aps["badge"] != nil {
		t.Errorf("private aps = %v, want mutable-content 1 and no badge", aps)
	}
	if r.header.Get("apns-priority") != "5" || r.header.Get("apns-expiration") != "" || len(r.header.Get("apns-collapse-id")) != 64 {
		t.Errorf("headers %v", r.header)
	}
	if reqs[0].jwt != reqs[1].jwt {
		t.Error("the provider token was not reused")
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name        string
		reply       reply
		wantInvalid bool
		wantRetry   bool
		wantAfter   time.Duration
	}{
		{name: "410 Unregistered", reply: reply{status: 410, reason: "Unregistered"}, wantInvalid: true},
		{name: "400 BadDeviceToken", reply: reply{status: 400, reason: "BadDeviceToken"}, wantInvalid: true},
		{name: "400 DeviceTokenNotForTopic", reply: reply{status: 400, reason: "DeviceTokenNotForTopic"}, wantInvalid: true},
		{name: "400 BadPayload is permanent", reply: reply{status: 400, reason: "PayloadTooLarge"}},
		{name: "403 InvalidProviderToken is permanent", reply: reply{status: 403, reason: "InvalidProviderToken"}},
		{name: "429 with Retry-After", reply: reply{status: 429, reason: "TooManyRequests", header: map[string]string{"Retry-After": "7"}}, wantRetry: true, wantAfter: 7 * time.Second},
		{name: "500", reply: reply{status: 500, reason: "InternalServerError"}, wantRetry: true},
		{name: "503", reply: reply{status: 503, reason: "ServiceUnavailable"}, wantRetry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			s.fake.script(tt.reply)
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
			if !errors.As(err, &se) || se.Status != tt.reply.status || se.Reason != tt.reply.reason {
				t.Errorf("StatusError = %+v, want %d %s", se, tt.reply.status, tt.reply.reason)
			}
		})
	}
}

func TestRetryAfterUnavailable(t *testing.T) {
	s := newSetup(t)
	s.fake.script(reply{status: 503, reason: "ServiceUnavailable"})
	var waits []time.Duration
	p := pushnotify.Policy{Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	if err := pushnotify.Retry(t.Context(), s.client, note(), p); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	reqs, ok := s.fake.requests()
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
	s.fake.script(reply{status: 403, reason: "ExpiredProviderToken"})
	if err := s.client.Send(t.Context(), note()); err != nil {
		t.Fatalf("Send after ExpiredProviderToken: %v", err)
	}
	reqs, ok := s.fake.requests()
	if len(reqs) != 3 || ok != 2 {
		t.Fatalf("%d requests, %d delivered; want 3, 2", len(reqs), ok)
	}
	if reqs[1].jwt != reqs[0].jwt || reqs[2].jwt == reqs[1].jwt || reqs[2].iat <= reqs[1].iat {
		t.Error("the retry did not carry a freshly signed token")
	}

	// A second ExpiredProviderToken in a row is not retried forever.
	s.fake.script(reply{status: 403, reason: "ExpiredProviderToken"}, reply{status: 403, reason: "ExpiredProviderToken"})
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
	reqs, _ := s.fake.requests()
	if reqs[0].jwt == reqs[1].jwt {
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
	if reqs, _ := s.fake.requests(); len(reqs) != 0 {
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
