package pushtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// FCMScope is the OAuth2 scope the fake's token endpoint requires.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMMessage is a v1 message the fake FCM accepted for checking.
type FCMMessage struct {
	// Message is the request's "message" object.
	Message map[string]any
	// Status is what the fake answered.
	Status int
}

// FCM is a fake Google: the OAuth2 token endpoint (JWT-bearer grant,
// RS256 assertions of its own service account) and FCM's v1 send
// endpoint, over TLS.
type FCM struct {
	script
	tb          testing.TB
	project     string
	clientEmail string
	creds       []byte
	pub         *rsa.PublicKey
	srv         *httptest.Server

	mu       sync.Mutex
	issued   []string // access tokens handed out
	revoked  map[string]bool
	messages []FCMMessage
}

// NewFCM starts a fake FCM for project, closed at the end of the test,
// with a service account of its own (Credentials).
func NewFCM(tb testing.TB, project, clientEmail string) *FCM {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	creds, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": "0123456789abcdef",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   clientEmail,
		"client_id":      "1234567890",
		"token_uri":      "https://oauth2.googleapis.com/token",
	})
	f := &FCM{tb: tb, project: project, clientEmail: clientEmail, creds: creds, pub: &key.PublicKey, revoked: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.send)
	f.srv = httptest.NewTLSServer(mux)
	tb.Cleanup(f.srv.Close)
	return f
}

// Credentials is the service account key file (fcm.Config.Credentials).
func (f *FCM) Credentials() []byte { return f.creds }

// URL is the send endpoint (fcm.Config.Endpoint).
func (f *FCM) URL() string { return f.srv.URL }

// TokenURL is the token endpoint (fcm.Config.TokenURL).
func (f *FCM) TokenURL() string { return f.srv.URL + "/token" }

// Client trusts the fake's certificate (fcm.Config.HTTPClient).
func (f *FCM) Client() *http.Client { return f.srv.Client() }

// Revoke makes every access token issued so far invalid.
func (f *FCM) Revoke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tok := range f.issued {
		f.revoked[tok] = true
	}
}

// Issued is how many access tokens were handed out.
func (f *FCM) Issued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.issued)
}

// Messages returns every message that passed the checks.
func (f *FCM) Messages() []FCMMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FCMMessage(nil), f.messages...)
}

// Delivered returns the messages answered 200.
func (f *FCM) Delivered() []FCMMessage {
	var out []FCMMessage
	for _, m := range f.Messages() {
		if m.Status == http.StatusOK {
			out = append(out, m)
		}
	}
	return out
}

func (f *FCM) token(w http.ResponseWriter, r *http.Request) {
	deny := func(why string) {
		f.tb.Errorf("fake token endpoint: %s", why)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, why)
	}
	if err := r.ParseForm(); err != nil {
		deny(err.Error())
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		deny("grant_type " + g)
		return
	}
	_, claims, err := VerifyJWT(r.PostForm.Get("assertion"), f.pub)
	if err != nil {
		deny("assertion: " + err.Error())
		return
	}
	iat, _ := NumericClaim(claims, "iat")
	exp, _ := NumericClaim(claims, "exp")
	now := time.Now().Unix()
	scopes, _ := claims["scope"].(string)
	switch {
	case claims["iss"] != f.clientEmail:
		deny(fmt.Sprintf("iss %v", claims["iss"]))
	case claims["aud"] != f.TokenURL():
		deny(fmt.Sprintf("aud %v, want %s", claims["aud"], f.TokenURL()))
	case !strings.Contains(" "+scopes+" ", " "+FCMScope+" "):
		deny("scope " + scopes)
	case iat > now+60 || exp < now || exp-iat > 3600:
		deny(fmt.Sprintf("iat %d exp %d", iat, exp))
	default:
		f.mu.Lock()
		tok := fmt.Sprintf("ya29.test-%d", len(f.issued)+1)
		f.issued = append(f.issued, tok)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3599}`, tok)
	}
}

func (f *FCM) send(w http.ResponseWriter, r *http.Request) {
	answer := func(status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
	if p := r.PathValue("project"); p != f.project {
		f.tb.Errorf("fake FCM: project %q", p)
		answer(404, `{"error":{"code":404,"status":"NOT_FOUND","message":"project"}}`)
		return
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	known := false
	for _, tok := range f.issued {
		known = known || tok == bearer
	}
	revoked := f.revoked[bearer]
	f.mu.Unlock()
	if !known || revoked {
		answer(401, `{"error":{"code":401,"status":"UNAUTHENTICATED","message":"Request had invalid authentication credentials."}}`)
		return
	}
	var req struct {
		Message map[string]any `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Message == nil {
		f.tb.Errorf("fake FCM: send body: %v", err)
		answer(400, `{"error":{"code":400,"status":"INVALID_ARGUMENT"}}`)
		return
	}
	if err := checkFCMMessage(req.Message); err != nil {
		f.tb.Errorf("fake FCM: message: %v", err)
		answer(400, `{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"`+err.Error()+`"}}`)
		return
	}
	rep := f.pop(http.StatusOK)
	if rep.Status == http.StatusOK && rep.Body == "" {
		rep.Body = `{"name":"projects/` + f.project + `/messages/0:1"}`
	}
	f.mu.Lock()
	f.messages = append(f.messages, FCMMessage{Message: req.Message, Status: rep.Status})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	writeReply(w, rep)
}

// checkFCMMessage checks what FCM checks of a v1 message: a token target,
// string data values, and known fields.
func checkFCMMessage(m map[string]any) error {
	for k := range m {
		switch k {
		case "token", "notification", "data", "android", "apns", "webpush", "fcm_options":
		default:
			return fmt.Errorf("unknown field message.%s", k)
		}
	}
	if tok, _ := m["token"].(string); tok == "" {
		return fmt.Errorf("token %v", m["token"])
	}
	if data, ok := m["data"].(map[string]any); ok {
		for k, v := range data {
			if _, ok := v.(string); !ok {
				return fmt.Errorf("data.%s is %T, want a string", k, v)
			}
		}
	}
	if a, ok := m["android"].(map[string]any); ok {
		if ttl, ok := a["ttl"].(string); ok && !strings.HasSuffix(ttl, "s") {
			return fmt.Errorf("android.ttl %q is not a duration", ttl)
		}
	}
	return nil
}
