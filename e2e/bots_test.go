package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify/webpush"
	"github.com/natter-chat/natter/services"
	"github.com/natter-chat/natter/services/webhook"
)

// TestBotWebhook: natter serve's events role POSTs a webhook service's
// events, signed, to its URL: a WebSocket user creates a group with the
// service's sender and says "hi", and a local HTTPS receiver gets the
// member_added and the message, in that order.
func TestBotWebhook(t *testing.T) {
	const secret = "whsec-e2e-0123456789"
	got := make(chan protocol.ServiceEvent, 16)
	recv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev protocol.ServiceEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		got <- ev
	}))
	defer recv.Close()
	e := start(t, func(c *app.Config) {
		// The receiver is on loopback: allowed here, never in production.
		c.Events.Webhook.Endpoints = webpush.EndpointPolicy{AllowHosts: []string{"127.0.0.1"}, AllowPrivate: true}
		c.Events.Webhook.HTTPClient = recv.Client()
	})
	nc, err := nats.Connect(e.app.NATS().OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	reg, err := services.Open(ctxT(t), js, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Put(ctxT(t), &services.Service{Name: "hook", Senders: []string{"hook-bot"},
		Webhook: &services.Webhook{URL: recv.URL + "/natter", Secret: secret}}); err != nil {
		t.Fatal(err)
	}
	// The service's consumer is made by the operator's watcher; wait for it
	// so the group's creation is not before it (a consumer starts at the
	// service's creation time anyway, this only keeps the test quick).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := js.Consumer(ctxT(t), schema.StreamServiceEvents, schema.ServiceEventsConsumerName("hook")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no consumer svc-hook: %v", err)
		}
	}

	alice := e.dial(t, "alice")
	g, err := alice.CreateGroup(ctxT(t), "hooks", "hook-bot")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := alice.Send(ctxT(t), g.Conv, "m1", text("hi"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{protocol.ServiceEventMemberAdded, protocol.ServiceEventMessage} {
		select {
		case ev := <-got:
			if ev.Type != want || ev.Conv != g.Conv || ev.Service != "hook" {
				t.Fatalf("got %+v, want %s", ev, want)
			}
			if want == protocol.ServiceEventMessage && (ev.Seq != ack.Seq || string(ev.Body) != `{"text":"hi"}` || ev.Sender != "alice") {
				t.Fatalf("message event %+v", ev)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("the webhook never got the %s event", want)
		}
	}
}
