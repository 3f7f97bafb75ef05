package pushtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// APNsConfig is what the fake APNs expects of the provider tokens.
type APNsConfig struct {
	TeamID, KeyID, Topic string
	// Now is the fake's clock for the token's age (default time.Now).
	Now func() time.Time
}

// APNsRequest is a request the fake APNs accepted for checking.
type APNsRequest struct {
	// Token is the device token from the path.
	Token string
	// JWT is the provider token and IAT its issued-at.
	JWT string
	IAT int64
	// Header and Body are the request's.
	Header http.Header
	Body   map[string]any
	// Status is what the fake answered.
	Status int
}

// APNs is a fake Apple Push Notification service: HTTP/2 over TLS,
// provider tokens signed with its own P-256 key.
type APNs struct {
	script
	tb  testing.TB
	cfg APNsConfig
	key []byte
	pub *ecdsa.PublicKey
	srv *httptest.Server

	mu   sync.Mutex
	reqs []APNsRequest
}

// NewAPNs starts a fake APNs, closed at the end of the test. It makes the
// signing key the client must use (Key).
func NewAPNs(tb testing.TB, cfg APNsConfig) *APNs {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	f := &APNs{tb: tb, cfg: cfg, pub: &k.PublicKey, key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = true
	f.srv.StartTLS()
	tb.Cleanup(f.srv.Close)
	return f
}

// URL is the endpoint (apns.Config.Endpoint).
func (f *APNs) URL() string { return f.srv.URL }

// Key is the .p8 file the client signs with (apns.Config.Key).
func (f *APNs) Key() []byte { return f.key }

// TLSConfig trusts the fake's certificate (apns.Config.TLSConfig).
func (f *APNs) TLSConfig() *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(f.srv.Certificate())
	return &tls.Config{RootCAs: roots}
}

// Requests returns every request that passed the checks.
func (f *APNs) Requests() []APNsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]APNsRequest(nil), f.reqs...)
}

// Delivered returns the requests answered 200.
func (f *APNs) Delivered() []APNsRequest {
	var out []APNsRequest
	for _, r := range f.Requests() {
		if r.Status == http.StatusOK {
			out = append(out, r)
		}
	}
	return out
}

func (f *APNs) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, reason string) {
		f.tb.Errorf("fake APNs rejects the request: %d %s", status, reason)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"reason": reason})
	}
	if r.ProtoMajor != 2 {
		fail(http.StatusBadRequest, "HTTP/2 required")
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if _, err := hex.DecodeString(token); r.Method != http.MethodPost || !ok || token == "" || err != nil {
		fail(http.StatusBadRequest, "BadDeviceToken "+r.Method+" "+r.URL.Path)
		return
	}
	auth, ok := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
	if !ok {
		fail(http.StatusForbidden, "MissingProviderToken")
		return
	}
	header, claims, err := VerifyJWT(auth, f.pub)
	if err != nil {
		fail(http.StatusForbidden, "InvalidProviderToken: "+err.Error())
		return
	}
	iat, _ := NumericClaim(claims, "iat")
	if header["kid"] != f.cfg.KeyID || claims["iss"] != f.cfg.TeamID || iat == 0 || f.cfg.Now().Unix()-iat > 3600 {
		fail(http.StatusForbidden, "InvalidProviderToken: header or claims")
		return
	}
	if r.Header.Get("apns-topic") != f.cfg.Topic {
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
	rep := f.pop(http.StatusOK)
	f.mu.Lock()
	f.reqs = append(f.reqs, APNsRequest{Token: token, JWT: auth, IAT: iat, Header: r.Header.Clone(), Body: body, Status: rep.Status})
	f.mu.Unlock()
	w.Header().Set("apns-id", "EC1BF194-B3B2-424A-89A9-5A918A6E7B3E")
	if rep.Reason != "" && rep.Body == "" {
		b, _ := json.Marshal(map[string]string{"reason": rep.Reason})
		rep.Body = string(b)
	}
	writeReply(w, rep)
}
