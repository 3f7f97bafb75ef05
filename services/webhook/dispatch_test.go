package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/webpush"
	"github.com/natter-chat/natter/services"
	"github.com/natter-chat/natter/services/webhook"
)

const secret = "whsec-0123456789abcdef"

// receiver is a local HTTPS webhook receiver that checks every
// signature and answers each event id by a script of status codes (200
// once the script is used up).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script map[string][]int
	got    []string // event ids, one per request
	bad    []string // what did not verify
}

func newReceiver(t *testing.T, script map[string][]int) *receiver {
	r := &receiver{script: script}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev protocol.ServiceEvent
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhook.Verify(secret, req.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			r.bad = append(r.bad, "signature: "+err.Error())
		}
		if err := json.Unmarshal(body, &ev); err != nil || req.Header.Get(webhook.HeaderEventID) != ev.ID || req.Method != http.MethodPost ||
			req.Header.Get("Content-Type") != "application/json" {
			r.bad = append(r.bad, "request: "+string(body))
		}
		r.got = append(r.got, ev.ID)
		code := http.StatusOK
		if s := r.script[ev.ID]; len(s) > 0 {
			code, r.script[ev.ID] = s[0], s[1:]
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() ([]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...), append([]string(nil), r.bad...)
}

type harness struct {
	js jetstream.JetStream
}

// start runs a JetStream with the schema, service "hook" with a webhook
// to url and its consumer, and a Dispatcher with policy.
func start(t *testing.T, url string, policy webpush.EndpointPolicy, client *http.Client) *harness {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	reg, err := services.Open(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &services.Service{Name: "hook", Senders: []string{"hook-bot"}, Webhook: &services.Webhook{URL: url, Secret: secret}}
	if err := reg.Put(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := schema.EnsureServiceConsumers(ctx, js, map[string]time.Time{"hook": s.Created}); err != nil {
		t.Fatal(err)
	}
	idx, err := services.Watch(ctx, js, services.WatchConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := webhook.New(webhook.Config{
		Endpoints: policy, HTTPClient: client, Poll: 50 * time.Millisecond,
		Retry: pushnotify.Policy{MaxAttempts: 3, BaseDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond},
	}, js, idx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &harness{js: js}
}

// event stores an event for service hook as the events writer does.
func (h *harness) event(t *testing.T, seq uint64, text string) string {
	t.Helper()
	id := strings.Join([]string{jsonNum(seq), "hook"}, ".")
	ev := protocol.ServiceEvent{V: 1, ID: id, Type: protocol.ServiceEventMessage, Service: "hook", Conv: "c1", Seq: seq,
		TS: protocol.FormatTime(time.Now()), Sender: "alice", As: []string{"hook-bot"}, Body: json.RawMessage(`{"text":"` + text + `"}`)}
	data, _ := json.Marshal(ev)
	if _, err := h.js.PublishMsg(t.Context(), &nats.Msg{Subject: schema.ServiceEvent("hook", "c1"), Data: data}, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
	return id
}

func jsonNum(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// dead returns the reasons of the dead-lettered events by id, waiting
// until there are n.
func (h *harness) dead(t *testing.T, n int) map[string]string {
	t.Helper()
	out := map[string]string{}
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters, want %d: %v", len(out), n, out)
		}
		st, err := h.js.Stream(t.Context(), schema.StreamWebhookDead)
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= st.CachedInfo().State.LastSeq; seq++ {
			m, err := st.GetMsg(t.Context(), seq)
			if err != nil {
				t.Fatal(err)
			}
			var ev protocol.ServiceEvent
			if err := json.Unmarshal(m.Data, &ev); err != nil || m.Subject != schema.WebhookDead("hook") {
				t.Fatalf("dead letter %s: %s", m.Subject, m.Data)
			}
			out[ev.ID] = m.Header.Get(schema.HeaderReason)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return out
}

// TestWebhook: events are POSTed in order, signed; a 500 is retried until
// it succeeds; an event that keeps failing goes to the DLQ after the
// retry bound, and one answered 400 at once, with the reason.
func TestWebhook(t *testing.T) {
	r := newReceiver(t, map[string][]int{
		"2.hook": {500},           // then 200
		"3.hook": {500, 503, 500}, // the bound is 3 attempts
		"4.hook": {400},           // not worth retrying
	})
	h := start(t, r.srv.URL+"/hook", webpush.EndpointPolicy{AllowHosts: []string{"127.0.0.1"}, AllowPrivate: true}, r.srv.Client())
	for i, text := range []string{"one", "two", "three", "four", "five"} {
		h.event(t, uint64(i+1), text)
	}
	dead := h.dead(t, 2)
	if !strings.Contains(dead["3.hook"], "after 3 attempts") || !strings.Contains(dead["3.hook"], "HTTP 500") ||
		!strings.Contains(dead["4.hook"], "after 1 attempts") || !strings.Contains(dead["4.hook"], "HTTP 400") {
		t.Fatalf("dead letters: %v", dead)
	}
	deadline := time.Now().Add(10 * time.Second)
	want := "1.hook 2.hook 2.hook 3.hook 3.hook 3.hook 4.hook 5.hook"
	for {
		got, bad := r.requests()
		if len(bad) > 0 {
			t.Fatalf("bad requests: %v", bad)
		}
		if strings.Join(got, " ") == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests %v, want %s", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhookSSRF: the webhook URL rules are Web Push's: https only, no
// loopback, private or link-local address, literal or resolved; a webhook
// the policy refuses gets no request, its events go to the DLQ.
func TestWebhookSSRF(t *testing.T) {
	r := newReceiver(t, nil)
	port := r.srv.URL[strings.LastIndex(r.srv.URL, ":"):]
	h := start(t, "https://localhost"+port+"/hook", webpush.EndpointPolicy{}, r.srv.Client())
	d, err := webhook.New(webhook.Config{}, h.js, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://example.com/hook", "https://127.0.0.1/hook", "https://10.1.2.3/hook",
		"https://169.254.169.254/latest", "https://[::1]/hook", "https://localhost" + port + "/hook", "https://user:pw@example.com/"} {
		if err := d.Check(t.Context(), u); !errors.Is(err, webpush.ErrEndpointRefused) {
			t.Errorf("Check(%s) = %v, want refused", u, err)
		}
	}
	if err := (&services.Webhook{URL: "http://example.com/hook", Secret: secret}).Validate(); !errors.Is(err, services.ErrInvalid) {
		t.Errorf("the registry took an http webhook: %v", err)
	}
	h.event(t, 1, "one")
	dead := h.dead(t, 1)
	if !strings.Contains(dead["1.hook"], "refused") {
		t.Fatalf("dead letter: %v", dead)
	}
	if got, _ := r.requests(); len(got) != 0 {
		t.Fatalf("the refused webhook got %v", got)
	}
}
