package pushtest

import (
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
)

// WebPushMessage is a push message the fake service accepted, decrypted.
type WebPushMessage struct {
	// Endpoint is the subscription's endpoint.
	Endpoint string
	// Payload is the decrypted JSON (webpush.Payload).
	Payload map[string]any
	// Header is the request's.
	Header http.Header
	// Status is what the fake answered.
	Status int
}

// browser is a subscription as a browser makes it: a P-256 key pair whose
// public half is p256dh, and a 16-byte auth secret.
type browser struct {
	key  *ecdh.PrivateKey
	auth []byte
}

// WebPush is a fake push service (RFC 8030) over TLS: it checks VAPID
// (RFC 8292) and the headers, decrypts each message for the browser that
// subscribed (RFC 8291) and answers 201 unless scripted otherwise.
type WebPush struct {
	script
	tb  testing.TB
	now func() time.Time
	srv *httptest.Server

	mu       sync.Mutex
	browsers map[string]*browser // by path
	received []WebPushMessage
}

// NewWebPush starts a fake push service, closed at the end of the test.
func NewWebPush(tb testing.TB, now func() time.Time) *WebPush {
	tb.Helper()
	if now == nil {
		now = time.Now
	}
	p := &WebPush{tb: tb, now: now, browsers: map[string]*browser{}}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	tb.Cleanup(p.srv.Close)
	return p
}

// URL is the service's origin, the aud of VAPID tokens.
func (p *WebPush) URL() string { return p.srv.URL }

// Client trusts the fake's certificate (webpush.Config.HTTPClient).
func (p *WebPush) Client() *http.Client { return p.srv.Client() }

// Subscribe makes a new browser subscription and returns it as
// PushSubscription.toJSON() does: the register_device token.
func (p *WebPush) Subscribe() string {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		p.tb.Fatal(err)
	}
	b := &browser{key: key, auth: make([]byte, 16)}
	_, _ = rand.Read(b.auth)
	p.mu.Lock()
	path := fmt.Sprintf("/wpush/v2/gAAAAAB%d", len(p.browsers)+1)
	p.browsers[path] = b
	p.mu.Unlock()
	j, _ := json.Marshal(map[string]any{
		"endpoint":       p.srv.URL + path,
		"expirationTime": nil,
		"keys": map[string]string{
			"p256dh": base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
			"auth":   base64.RawURLEncoding.EncodeToString(b.auth),
		},
	})
	return string(j)
}

// Received returns every message that passed the checks.
func (p *WebPush) Received() []WebPushMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]WebPushMessage(nil), p.received...)
}

// Delivered returns the messages answered with a 2xx.
func (p *WebPush) Delivered() []WebPushMessage {
	var out []WebPushMessage
	for _, m := range p.Received() {
		if m.Status >= 200 && m.Status < 300 {
			out = append(out, m)
		}
	}
	return out
}

func (p *WebPush) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	b := p.browsers[r.URL.Path]
	p.mu.Unlock()
	if r.Method != http.MethodPost || b == nil {
		reject(p.tb, w, "push service", 404, "no such subscription "+r.URL.Path)
		return
	}
	if err := p.checkVAPID(r.Header.Get("Authorization")); err != nil {
		reject(p.tb, w, "push service", 401, err.Error())
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		reject(p.tb, w, "push service", 415, "Content-Encoding "+ce)
		return
	}
	if ttl := r.Header.Get("TTL"); ttl == "" || strings.Trim(ttl, "0123456789") != "" {
		reject(p.tb, w, "push service", 400, "TTL "+ttl)
		return
	}
	if u := r.Header.Get("Urgency"); u != "high" && u != "normal" && u != "low" && u != "very-low" {
		reject(p.tb, w, "push service", 400, "Urgency "+u)
		return
	}
	if tp := r.Header.Get("Topic"); len(tp) > 32 || strings.Trim(tp, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		reject(p.tb, w, "push service", 400, "Topic "+tp)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if len(body) > 4096 {
		reject(p.tb, w, "push service", 413, "payload too large")
		return
	}
	plain, err := Decrypt(body, b.key, b.auth)
	if err != nil {
		reject(p.tb, w, "push service", 400, "decrypt: "+err.Error())
		return
	}
	var payload map[string]any
	if err := json.Unmarshal(plain, &payload); err != nil {
		reject(p.tb, w, "push service", 400, "payload: "+err.Error())
		return
	}
	rep := p.pop(http.StatusCreated)
	p.mu.Lock()
	p.received = append(p.received, WebPushMessage{Endpoint: p.srv.URL + r.URL.Path, Payload: payload, Header: r.Header.Clone(), Status: rep.Status})
	p.mu.Unlock()
	writeReply(w, rep)
}

// checkVAPID verifies "vapid t=<jwt>, k=<key>" as RFC 8292 says.
func (p *WebPush) checkVAPID(h string) error {
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
	_, claims, err := VerifyJWT(params["t"], pub)
	if err != nil {
		return err
	}
	exp, _ := NumericClaim(claims, "exp")
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

// Decrypt is what a browser does with a push message (RFC 8291 3, RFC
// 8188 2): read the header, agree on the secret with the sender's key from
// the keyid, derive the key and nonce, open each record and strip padding.
func Decrypt(body []byte, ua *ecdh.PrivateKey, auth []byte) ([]byte, error) {
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
