package webpush_test

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/pushtest"
	"github.com/natter-chat/natter/pushnotify/webpush"
)

// The test's decryption is checked on the RFC's own example first.
func TestDecryptRFC8291Example(t *testing.T) {
	d := func(s string) []byte { b, _ := base64.RawURLEncoding.DecodeString(s); return b }
	ua, err := ecdh.P256().NewPrivateKey(d("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
	if err != nil {
		t.Fatal(err)
	}
	body := d("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml" +
		"mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT" +
		"pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
	got, err := pushtest.Decrypt(body, ua, d("BTBZMqHH6r4Tts7J_aSIgg"))
	if err != nil || string(got) != "When I grow up, I want to be a watermelon" {
		t.Fatalf("decrypt = %q, %v", got, err)
	}
}

type setup struct {
	client  *webpush.Client
	service *pushtest.WebPush
	sub     string // the browser's subscription
}

func newSetup(t *testing.T) setup {
	t.Helper()
	t.Cleanup(natstest.CheckGoroutines(t))
	priv, pub, err := webpush.GenerateVAPIDKey()
	if err != nil {
		t.Fatal(err)
	}
	svc := pushtest.NewWebPush(t, time.Now)
	c, err := webpush.New(webpush.Config{
		PrivateKey: priv,
		Subject:    "mailto:ops@natter.example",
		HTTPClient: svc.Client(),
		// The fake service listens on 127.0.0.1: only tests allow that.
		Endpoints: webpush.EndpointPolicy{AllowHosts: []string{"127.0.0.1"}, AllowPrivate: true},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	if c.PublicKey() != pub {
		t.Fatalf("PublicKey %s, generated %s", c.PublicKey(), pub)
	}
	return setup{client: c, service: svc, sub: svc.Subscribe()}
}

func (s setup) note() *pushnotify.Notification {
	return &pushnotify.Notification{
		Platform:   pushnotify.PlatformWebPush,
		Token:      s.sub,
		Title:      "Team",
		Body:       "Ann: hi ✓",
		Conv:       "g_team",
		Seq:        42,
		Count:      1,
		CollapseID: "g_team",
		Data:       map[string]string{"conv": "g_team"},
		TTL:        time.Hour,
	}
}

// state returns the decrypted payloads and headers the service accepted
// and how many it answered with a 2xx.
func state(t *testing.T, svc *pushtest.WebPush) (received []webpush.Payload, headers []http.Header, delivered int) {
	t.Helper()
	for _, m := range svc.Received() {
		raw, _ := json.Marshal(m.Payload)
		var p webpush.Payload
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		received = append(received, p)
		headers = append(headers, m.Header)
	}
	return received, headers, len(svc.Delivered())
}

func TestSendDelivers(t *testing.T) {
	s := newSetup(t)
	if err := s.client.Send(t.Context(), s.note()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	received, headers, delivered := state(t, s.service)
	if delivered != 1 {
		t.Fatalf("delivered %d, want 1", delivered)
	}
	want := webpush.Payload{Title: "Team", Body: "Ann: hi ✓", Conv: "g_team", Seq: 42, Count: 1, Tag: "g_team", Data: map[string]string{"conv": "g_team"}}
	if fmt.Sprint(received[0]) != fmt.Sprint(want) {
		t.Errorf("decrypted payload %+v, want %+v", received[0], want)
	}
	h := headers[0]
	if h.Get("TTL") != "3600" || h.Get("Urgency") != "high" || h.Get("Topic") != "g_team" {
		t.Errorf("TTL %q Urgency %q Topic %q", h.Get("TTL"), h.Get("Urgency"), h.Get("Topic"))
	}

	n := s.note()
	n.TTL, n.Urgency, n.CollapseID = 0, pushnotify.UrgencyNormal, "a collapse id that does not fit the Topic header"
	if err := s.client.Send(t.Context(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_, headers, _ = state(t, s.service)
	if h := headers[1]; h.Get("TTL") != "86400" || h.Get("Urgency") != "normal" || len(h.Get("Topic")) != 32 {
		t.Errorf("TTL %q Urgency %q Topic %q", h.Get("TTL"), h.Get("Urgency"), h.Get("Topic"))
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
		{name: "410 Gone", reply: pushtest.Reply{Status: 410}, wantInvalid: true},
		{name: "404 Not Found", reply: pushtest.Reply{Status: 404}, wantInvalid: true},
		{name: "429 with Retry-After", reply: pushtest.Reply{Status: 429, Header: map[string]string{"Retry-After": "30"}}, wantRetry: true, wantAfter: 30 * time.Second},
		{name: "503", reply: pushtest.Reply{Status: 503}, wantRetry: true},
		{name: "413 is permanent", reply: pushtest.Reply{Status: 413}},
		{name: "403 is permanent", reply: pushtest.Reply{Status: 403}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			s.service.Script(tt.reply)
			err := s.client.Send(t.Context(), s.note())
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
		})
	}
}

func TestRetryAfterUnavailable(t *testing.T) {
	s := newSetup(t)
	s.service.Script(pushtest.Reply{Status: 503})
	var waits int
	p := pushnotify.Policy{Sleep: func(ctx context.Context, d time.Duration) error { waits++; return nil }}
	if err := pushnotify.Retry(t.Context(), s.client, s.note(), p); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	received, _, delivered := state(t, s.service)
	if len(received) != 2 || delivered != 1 || waits != 1 {
		t.Fatalf("requests %d, delivered %d, waits %d; want 2, 1, 1", len(received), delivered, waits)
	}
}

func TestBadSubscriptions(t *testing.T) {
	s := newSetup(t)
	good := s.sub
	for name, token := range map[string]string{
		"not JSON":           "nope",
		"http endpoint":      strings.Replace(good, "https://", "http://", 1),
		"short auth":         `{"endpoint":"https://x.example/1","keys":{"p256dh":"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4","auth":"AAAA"}}`,
		"p256dh not a point": `{"endpoint":"https://x.example/1","keys":{"p256dh":"AAAA","auth":"BTBZMqHH6r4Tts7J_aSIgg"}}`,
	} {
		if _, err := webpush.ParseSubscription(token); err == nil {
			t.Errorf("%s: ParseSubscription accepted it", name)
		}
		n := s.note()
		n.Token = token
		if err := s.client.Send(t.Context(), n); !errors.Is(err, pushnotify.ErrInvalidToken) {
			t.Errorf("%s: Send = %v, want ErrInvalidToken", name, err)
		}
	}
	// Standard base64 with padding, as some browsers produce, is accepted.
	sub, err := webpush.ParseSubscription(good)
	if err != nil {
		t.Fatal(err)
	}
	std := strings.NewReplacer("-", "+", "_", "/").Replace(sub.Keys.Auth) + "=="
	padded := strings.Replace(good, sub.Keys.Auth, std, 1)
	if _, err := webpush.ParseSubscription(padded); err != nil {
		t.Errorf("padded standard base64 auth refused: %v", err)
	}
	if _, _, delivered := state(t, s.service); delivered != 0 {
		t.Errorf("a bad subscription reached the push service")
	}
}

func TestNew(t *testing.T) {
	priv, _, _ := webpush.GenerateVAPIDKey()
	for name, cfg := range map[string]webpush.Config{
		"no key":       {Subject: "mailto:a@b.example"},
		"bad key":      {PrivateKey: "AAAA", Subject: "mailto:a@b.example"},
		"no subject":   {PrivateKey: priv},
		"http subject": {PrivateKey: priv, Subject: "http://natter.example"},
	} {
		if _, err := webpush.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
