package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/pushnotify/webpush"
	"github.com/natter-chat/natter/services"
)

// TestServiceWebhook: `natter service webhook` refuses what the
// dispatcher would (http, non-public addresses, a short secret), stores
// a webhook with a generated secret it prints once, and --off removes it.
func TestServiceWebhook(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := t.Context()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	reg, err := services.Open(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Put(ctx, &services.Service{Name: "echo", Senders: []string{"echo-bot"}}); err != nil {
		t.Fatal(err)
	}
	cmd := func(args ...string) (string, error) {
		var out, errs strings.Builder
		err := run(append([]string{"service", "webhook", "echo", "--nats-url", srv.OperatorURL(), "--data", t.TempDir()}, args...), &out, &errs)
		return out.String(), err
	}
	for _, u := range []string{"http://93.184.215.14/hook", "https://127.0.0.1/hook", "https://10.0.0.1/hook"} {
		if _, err := cmd(u); !errors.Is(err, webpush.ErrEndpointRefused) {
			t.Errorf("webhook %s: %v, want refused", u, err)
		}
	}
	if _, err := cmd("--secret", "short", "https://93.184.215.14/hook"); !errors.Is(err, services.ErrInvalid) {
		t.Errorf("a short secret: %v", err)
	}
	out, err := cmd("https://93.184.215.14/hook")
	if err != nil || !strings.Contains(out, "signing secret (shown once): ") {
		t.Fatalf("webhook: %v, %s", err, out)
	}
	s, err := reg.Get(ctx, "echo")
	if err != nil || s.Webhook == nil || s.Webhook.URL != "https://93.184.215.14/hook" || !strings.Contains(out, s.Webhook.Secret) {
		t.Fatalf("stored %+v, %v", s, err)
	}
	if _, err := cmd("--off"); err != nil {
		t.Fatal(err)
	}
	if s, err := reg.Get(ctx, "echo"); err != nil || s.Webhook != nil {
		t.Fatalf("after --off: %+v, %v", s, err)
	}
}
