package services_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/services"
)

func TestRegistry(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	reg, err := services.Open(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan []services.Service, 16)
	idx, err := services.Watch(ctx, js, services.WatchConfig{OnChange: func(s []services.Service) { changes <- s }})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-changes; len(got) != 0 {
		t.Fatalf("initial services %v", got)
	}
	for _, bad := range []*services.Service{{Name: "Bot"}, {Name: "1bot"}, {Name: "bot", Senders: []string{"a.b"}}, {Name: "a-very-long-name-of-more-than-32-chars"}} {
		if err := reg.Put(ctx, bad); !errors.Is(err, services.ErrInvalid) {
			t.Errorf("Put(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := reg.Put(ctx, &services.Service{Name: "alerts", Senders: []string{"bot-b", "bot-a", "bot-a"}}); err != nil {
		t.Fatal(err)
	}
	got, err := reg.Get(ctx, "alerts")
	if err != nil || !slices.Equal(got.Senders, []string{"bot-a", "bot-b"}) || got.Created.IsZero() {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if err := reg.Put(ctx, &services.Service{Name: "billing", Senders: []string{"bot-a"}}); !errors.Is(err, services.ErrSenderTaken) {
		t.Fatalf("a second service took bot-a: %v", err)
	}
	if err := reg.Put(ctx, &services.Service{Name: "billing", Senders: []string{"billing-bot"}}); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes, 2)
	if !idx.Allowed("alerts", "bot-a") || idx.Allowed("alerts", "billing-bot") || idx.Allowed("nope", "bot-a") {
		t.Fatal("Allowed is wrong")
	}
	if n, ok := idx.ServiceOf("billing-bot"); !ok || n != "billing" {
		t.Fatalf("ServiceOf = %q %v", n, ok)
	}
	list, err := reg.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alerts" {
		t.Fatalf("List = %v, %v", list, err)
	}
	if err := reg.Delete(ctx, "alerts"); err != nil {
		t.Fatal(err)
	}
	if err := reg.Delete(ctx, "alerts"); !errors.Is(err, services.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	waitChange(t, changes, 1)
	if idx.Allowed("alerts", "bot-a") {
		t.Fatal("a deleted service is still allowed")
	}
}

func waitChange(t *testing.T, ch <-chan []services.Service, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s := <-ch:
			if len(s) == n {
				return
			}
		case <-deadline:
			t.Fatalf("the index never held %d services", n)
		}
	}
}
