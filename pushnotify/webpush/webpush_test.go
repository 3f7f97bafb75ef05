package webpush_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/internal/pushtest"
	"github.com/natter-chat/natter/pushnotify/webpush"
)

// browser is a subscription as a browser makes it: a P-256 key pair whose
// public half is p256dh, and a 16-byte auth secret.
type browser struct {
	key  *ecdh.PrivateKey
	auth []byte
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return &browser{key: key, auth: auth}
}

func (b *browser) subscription(endpoint string) string {
	j, _ := json.Marshal(map[string]any{
		"endpoint":       endpoint,
		"expirationTime": nil,
		"keys": map[string]string{
			"p256dh": base64.RawURLEncoding.EncodeToString(b.key.PublicKey().Bytes()),
			"auth":   base64.RawURLEncoding.EncodeToString(b.auth),
		},
	})
	return string(j)
}

// hkdf is RFC 5869 written out with HMAC-SHA-256, for lengths up to 32
// bytes (one block), independent of crypto/hkdf used by the sender.
func hkdf(salt, ikm, info []byte, length int) []byte {
	ext := hmac.New(sha256.New, salt)
	ext.Write(ikm)
	prk := ext.Sum(nil)
	exp := hmac.New(sha256.New, prk)
	exp.Write(info)
	exp.Write([]byte{1})
	return exp.Sum(nil)[:length]
}

// decrypt is what the browser does with a push message (RFC 8291 3, RFC
// 8188 2): read the header, agree on the secret with the sender's key from
// the keyid, derive the key and nonce, open each record and strip padding.
func decrypt(body []byte, ua *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("short header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || idlen != 65 {
		return nil, fmt.Errorf("keyid length %d, want 65", idlen)
	}
	asPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, fmt.Errorf("keyid: %w", err)
	}
	secret, err := ua.ECDH(asPub)
	if err != nil {
		return nil, err
	}
	info := append([]byte("WebPush: info\x00"), ua.PublicKey().Bytes()...)
	info = append(info, asPub.Bytes()...)
	ikm := hkdf(auth, secret, info, 32)
	cek := hkdf(salt, ikm, []byte("Content-Encoding: aes128gcm\x00"), 16)
	nonce := hkdf(salt, ikm, []byte("Content-Encoding: nonce\x00"), 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)

	records := body[21+idlen:]
	if rs < 18 || len(records) == 0 {
		return nil, fmt.Errorf("record size %d", rs)
	}
	var out []byte
	for seq := uint64(0); len(records) > 0; seq++ {
		n := min(int(rs), len(records))
		rec := records[:n]
		records = records[n:]
		iv := append([]byte(nil), nonce...)
		for i := range 8 { // nonce XOR the record sequence number
			iv[11-i] ^= byte(seq >> (8 * i))
		}
		plain, err := gcm.Open(nil, iv, rec, nil)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", seq, err)
		}
		i := len(plain) - 1
		for i >= 0 && plain[i] == 0 {
			i--
		}
		last := len(records) == 0
		switch {
		case i < 0:
			return nil, errors.New("record without a delimiter")
		case last && plain[i] != 2:
			return nil, fmt.Errorf("last record delimiter %#x, want 0x02", plain[i])
		case !last && plain[i] != 1:
			return nil, fmt.Errorf("record delimiter %#x, want 0x01", plain[i])
		}
		out = append(out, plain[:i]...)
	}
	return out, nil
}

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
	got, err := decrypt(body, ua, d("BTBZMqHH6r4Tts7J_aSIgg"))
	if err != nil || string(got) != "When I grow up, I want to be a watermelon" {
		t.Fatalf("decrypt = %q, %v", got, err)
	}
}

type reply struct {
	status int
	header map[string]string
}

// pushService plays a push service: it checks VAPID and the headers,
// decrypts the message for the one browser it knows and answers from a
// script (201 when the script is empty).
type pushService struct {
	t       *testing.T
	browser *browser
	now     func() time.Time
	srv     *httptest.Server

	mu        sync.Mutex
	next      []reply
	received  []webpush.Payload
	headers   []http.Header
	delivered int
}

func newPushService(t *testing.T, b *browser, now func() time.Time) *pushService {
	p := &pushService{t: t, browser: b, now: now}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pushService) endpoint() string { return p.srv.URL + "/wpush/v2/gAAAAABexample" }

func (p *pushService) serve(w http.ResponseWriter, r *http.Request) {
	reject := func(status int, why string) {
		p.t.Errorf("push service rejects: %s", why)
		http.Error(w, why, status)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/wpush/v2/gAAAAABexample" {
		reject(404, "no such subscription "+r.URL.Path)
		return
	}
	if err := p.checkVAPID(r.Header.Get("Authorization")); err != nil {
		reject(401, err.Error())
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		reject(415, "Content-Encoding "+ce)
		return
	}
	if ttl := r.Header.Get("TTL"); ttl == "" || strings.Trim(ttl, "0123456789") != "" {
		reject(400, "TTL "+ttl)
		return
	}
	if u := r.Header.Get("Urgency"); u != "high" && u != "normal" && u != "low" && u != "very-low" {
		reject(400, "Urgency "+u)
		return
	}
	if tp := r.Header.Get("Topic"); len(tp) > 32 || strings.Trim(tp, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		reject(400, "Topic "+tp)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if len(body) > 4096 {
		reject(413, "payload too large")
		return
	}
	plain, err := decrypt(body, p.browser.key, p.browser.auth)
	if err != nil {
		reject(400, "decrypt: "+err.Error())
		return
	}
	var payload webpush.Payload
	if err := json.Unmarshal(plain, &payload); err != nil {
		reject(400, "payload: "+err.Error())
		return
	}
	p.mu.Lock()
	p.received = append(p.received, payload)
	p.headers = append(p.headers, r.Header.Clone())
	rep := reply{status: http.StatusCreated}
	if len(p.next) > 0 {
		rep, p.next = p.next[0], p.next[1:]
	}
	if rep.status == http.StatusCreated {
		p.delivered++
	}
	p.mu.Unlock()
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
}

// checkVAPID verifies "vapid t=<jwt>, k=<key>" as RFC 8292 says.
func (p *pushService) checkVAPID(h string) error {
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return fmt.Errorf("authorization %q is not vapid", h)
	}
	params := map[string]string{}
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		params[k] = v
	}
	raw, err := base64.RawURLEncoding.DecodeString(params["k"])
	if err != nil {
		return fmt.Errorf("k: %w", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return fmt.Errorf("k: %w", err)
	}
	_, claims, err := pushtest.VerifyJWT(params["t"], pub)
	if err != nil {
		return err
	}
	exp, _ := pushtest.NumericClaim(claims, "exp")
	now := p.now().Unix()
	sub, _ := claims["sub"].(string)
	switch {
	case claims["aud"] != p.srv.URL:
		return fmt.Errorf("aud %v, want %s", claims["aud"], p.srv.URL)
	case exp <= now || exp > now+24*3600:
		return fmt.Errorf("exp %d is not within 24 h of %d", exp, now)
	case !strings.HasPrefix(sub, "mailto:") && !strings.HasPrefix(sub, "https:"):
		return fmt.Errorf("sub %q", sub)
	}
	return nil
}

func (p *pushService) script(r ...reply) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = append(p.next, r...)
}

func (p *pushService) state() (received []webpush.Payload, headers []http.Header, delivered int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]webpush.Payload(nil), p.received...), append([]http.Header(nil), p.headers...), p.delivered
}

type setup struct {
	client  *webpush.Client
	service *pushService
	browser *browser
}

func newSetup(t *testing.T) setup {
	t.Helper()
	t.Cleanup(natstest.CheckGoroutines(t))
	priv, pub, err := webpush.GenerateVAPIDKey()
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	svc := newPushService(t, b, time.Now)
	c, err := webpush.New(webpush.Config{
		PrivateKey: priv,
		Subject:    "mailto:ops@natter.example",
		HTTPClient: svc.srv.Client(),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	if c.PublicKey() != pub {
		t.Fatalf("PublicKey %s, generated %s", c.PublicKey(), pub)
	}
	return setup{client: c, service: svc, browser: b}
}

func (s setup) note() *pushnotify.Notification {
	return &pushnotify.Notification{
		Platform:   pushnotify.PlatformWebPush,
		Token:      s.browser.subscription(s.service.endpoint()),
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

func TestSendDelivers(t *testing.T) {
	s := newSetup(t)
	if err := s.client.Send(t.Context(), s.note()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	received, headers, delivered := s.service.state()
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
	_, headers, _ = s.service.state()
	if h := headers[1]; h.Get("TTL") != "86400" || h.Get("Urgency") != "normal" || len(h.Get("Topic")) != 32 {
		t.Errorf("TTL %q Urgency %q Topic %q", h.Get("TTL"), h.Get("Urgency"), h.Get("Topic"))
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
		{name: "410 Gone", reply: reply{status: 410}, wantInvalid: true},
		{name: "404 Not Found", reply: reply{status: 404}, wantInvalid: true},
		{name: "429 with Retry-After", reply: reply{status: 429, header: map[string]string{"Retry-After": "30"}}, wantRetry: true, wantAfter: 30 * time.Second},
		{name: "503", reply: reply{status: 503}, wantRetry: true},
		{name: "413 is permanent", reply: reply{status: 413}},
		{name: "403 is permanent", reply: reply{status: 403}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			s.service.script(tt.reply)
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
	s.service.script(reply{status: 503})
	var waits int
	p := pushnotify.Policy{Sleep: func(ctx context.Context, d time.Duration) error { waits++; return nil }}
	if err := pushnotify.Retry(t.Context(), s.client, s.note(), p); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	received, _, delivered := s.service.state()
	if len(received) != 2 || delivered != 1 || waits != 1 {
		t.Fatalf("requests %d, delivered %d, waits %d; want 2, 1, 1", len(received), delivered, waits)
	}
}

func TestBadSubscriptions(t *testing.T) {
	s := newSetup(t)
	good := s.browser.subscription(s.service.endpoint())
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
	if _, _, delivered := s.service.state(); delivered != 0 {
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
