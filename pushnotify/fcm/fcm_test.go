package fcm_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/fcm"
	"github.com/natter-chat/natter/pushnotify/internal/pushtest"
)

const (
	project     = "natter-test"
	clientEmail = "push@natter-test.iam.gserviceaccount.com"
	regToken    = "fcm-registration-token:APA91bH-example"
)

// reply is one scripted answer of the fake send endpoint.
type reply struct {
	status int
	body   string
	header map[string]string
}

// fakeGoogle plays Google's OAuth2 token endpoint and FCM's send endpoint.
type fakeGoogle struct {
	t   *testing.T
	pub *rsa.PublicKey
	srv *httptest.Server

	mu        sync.Mutex
	issued    []string // access tokens handed out
	revoked   map[string]bool
	next      []reply
	messages  []map[string]any // messages that passed the checks
	delivered int
}

func newFakeGoogle(t *testing.T, pub *rsa.PublicKey) *fakeGoogle {
	f := &fakeGoogle{t: t, pub: pub, revoked: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.send)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGoogle) tokenURL() string { return f.srv.URL + "/token" }

func (f *fakeGoogle) token(w http.ResponseWriter, r *http.Request) {
	deny := func(why string) {
		f.t.Errorf("fake token endpoint: %s", why)
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
	_, claims, err := pushtest.VerifyJWT(r.PostForm.Get("assertion"), f.pub)
	if err != nil {
		deny("assertion: " + err.Error())
		return
	}
	iat, _ := pushtest.NumericClaim(claims, "iat")
	exp, _ := pushtest.NumericClaim(claims, "exp")
	now := time.Now().Unix()
	scopes, _ := claims["scope"].(string)
	switch {
	case claims["iss"] != clientEmail:
		deny(fmt.Sprintf("iss %v", claims["iss"]))
	case claims["aud"] != f.tokenURL():
		deny(fmt.Sprintf("aud %v, want %s", claims["aud"], f.tokenURL()))
	case !strings.Contains(" "+scopes+" ", " "+fcm.Scope+" "):
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

func (f *fakeGoogle) send(w http.ResponseWriter, r *http.Request) {
	answer := func(status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
	if p := r.PathValue("project"); p != project {
		f.t.Errorf("project %q", p)
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
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil || req.Message == nil {
		f.t.Errorf("send body: %v", err)
		answer(400, `{"error":{"code":400,"status":"INVALID_ARGUMENT"}}`)
		return
	}
	if err := checkMessage(req.Message); err != nil {
		f.t.Errorf("message: %v", err)
		answer(400, `{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"`+err.Error()+`"}}`)
		return
	}
	f.mu.Lock()
	f.messages = append(f.messages, req.Message)
	rep := reply{status: 200, body: `{"name":"projects/natter-test/messages/0:1"}`}
	if len(f.next) > 0 {
		rep, f.next = f.next[0], f.next[1:]
	}
	if rep.status == 200 {
		f.delivered++
	}
	f.mu.Unlock()
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	answer(rep.status, rep.body)
}

// checkMessage checks what FCM checks of a v1 message: a target, string
// data values, and known fields.
func checkMessage(m map[string]any) error {
	for k := range m {
		switch k {
		case "token", "notification", "data", "android", "apns", "webpush", "fcm_options":
		default:
			return fmt.Errorf("unknown field message.%s", k)
		}
	}
	if m["token"] != regToken {
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

func (f *fakeGoogle) script(r ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = append(f.next, r...)
}

func (f *fakeGoogle) revoke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tok := range f.issued {
		f.revoked[tok] = true
	}
}

func (f *fakeGoogle) state() (issued, messages, delivered int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.issued), len(f.messages), f.delivered
}

func newClient(t *testing.T) (*fcm.Client, *fakeGoogle) {
	t.Helper()
	t.Cleanup(natstest.CheckGoroutines(t))
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
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
	fake := newFakeGoogle(t, &key.PublicKey)
	c, err := fcm.New(fcm.Config{
		Credentials: creds,
		Endpoint:    fake.srv.URL,
		TokenURL:    fake.tokenURL(),
		HTTPClient:  fake.srv.Client(),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c, fake
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
	issued, messages, delivered := fake.state()
	if issued != 1 || messages != 2 || delivered != 2 {
		t.Fatalf("tokens issued %d, messages %d, delivered %d; want 1, 2, 2", issued, messages, delivered)
	}
	got, _ := json.Marshal(fake.messages[0])
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
		reply       reply
		wantInvalid bool
		wantRetry   bool
		wantAfter   time.Duration
		wantReason  string
	}{
		{
			name:        "404 UNREGISTERED",
			reply:       reply{status: 404, body: `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`},
			wantInvalid: true, wantReason: "UNREGISTERED",
		},
		{
			name:        "400 INVALID_ARGUMENT on the token",
			reply:       reply{status: 400, body: `{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]}]}}`},
			wantInvalid: true, wantReason: "INVALID_ARGUMENT",
		},
		{
			name:       "400 INVALID_ARGUMENT elsewhere is permanent",
			reply:      reply{status: 400, body: `{"error":{"code":400,"message":"Invalid value at 'message.data[0].value'","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data[0].value","description":"Invalid value"}]}]}}`},
			wantReason: "INVALID_ARGUMENT",
		},
		{
			name:       "403 SENDER_ID_MISMATCH is permanent",
			reply:      reply{status: 403, body: `{"error":{"code":403,"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"SENDER_ID_MISMATCH"}]}}`},
			wantReason: "SENDER_ID_MISMATCH",
		},
		{
			name:      "429 QUOTA_EXCEEDED with Retry-After",
			reply:     reply{status: 429, header: map[string]string{"Retry-After": "12"}, body: `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}`},
			wantRetry: true, wantAfter: 12 * time.Second, wantReason: "QUOTA_EXCEEDED",
		},
		{
			name:      "503 UNAVAILABLE",
			reply:     reply{status: 503, body: `{"error":{"code":503,"status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNAVAILABLE"}]}}`},
			wantRetry: true, wantReason: "UNAVAILABLE",
		},
		{
			name:      "500 without a body",
			reply:     reply{status: 500},
			wantRetry: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fake := newClient(t)
			fake.script(tt.reply)
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
			if !errors.As(err, &se) || se.Status != tt.reply.status || se.Reason != tt.wantReason {
				t.Errorf("StatusError = %+v, want %d %s", se, tt.reply.status, tt.wantReason)
			}
		})
	}
}

func TestRetryAfterQuota(t *testing.T) {
	c, fake := newClient(t)
	fake.script(reply{status: 429, header: map[string]string{"Retry-After": "2"}, body: `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}`})
	var waits []time.Duration
	p := pushnotify.Policy{Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	if err := pushnotify.Retry(t.Context(), c, note(), p); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	_, messages, delivered := fake.state()
	if messages != 2 || delivered != 1 || len(waits) != 1 || waits[0] != 2*time.Second {
		t.Fatalf("messages %d, delivered %d, waits %v; want 2, 1, [2s]", messages, delivered, waits)
	}
}

func TestRevokedAccessTokenIsReplaced(t *testing.T) {
	c, fake := newClient(t)
	if err := c.Send(t.Context(), note()); err != nil {
		t.Fatal(err)
	}
	fake.revoke()
	if err := c.Send(t.Context(), note()); err != nil {
		t.Fatalf("Send after revocation: %v", err)
	}
	if issued, _, delivered := fake.state(); issued != 2 || delivered != 2 {
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
