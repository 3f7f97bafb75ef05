package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/client/service"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// TestEventsScoped: a service reads its own events through its own NATS
// user, and the server refuses it anything else: another service's
// consumer, CHAT (its messages, a consumer of its own on it), SVC_EVENTS
// as a stream, a consumer of its own making, the raw event subjects.
func TestEventsScoped(t *testing.T) {
	a := natter(t)
	ctx := t.Context()
	aURL := register(t, a, "alpha", "alpha-bot")
	alpha, err := service.Connect(aURL)
	if err != nil {
		t.Fatal(err)
	}
	defer alpha.Close()
	conv, err := alpha.CreateConversation(ctx, "alpha-bot", protocol.ConversationGroup, "ops", "alice", "beta-bot")
	if err != nil {
		t.Fatal(err)
	}
	beta, err := service.Connect(register(t, a, "beta", "beta-bot"))
	if err != nil {
		t.Fatal(err)
	}
	defer beta.Close()
	if _, err := beta.Post(ctx, "beta-bot", conv.ID, "b1", []byte(`{"text":"from beta"}`)); err != nil {
		t.Fatal(err)
	}
	got := make(chan *protocol.ServiceEvent, 16)
	ectx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- alpha.Events(ectx, func(_ context.Context, ev *protocol.ServiceEvent) error { got <- ev; return nil })
	}()
	timeout := time.After(15 * time.Second)
wait:
	for {
		select {
		case ev := <-got:
			if ev.Type != protocol.ServiceEventMessage {
				continue
			}
			if ev.Sender != "beta-bot" || ev.Conv != conv.ID || ev.Service != "alpha" || string(ev.Body) != `{"text":"from beta"}` {
				t.Fatalf("alpha got %+v", ev)
			}
			break wait
		case err := <-done:
			t.Fatalf("Events returned before the message: %v", err)
		case <-timeout:
			t.Fatal("alpha never got beta's message")
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The same user, raw: every attempt outside its consumer is refused.
	violations := make(chan error, 64)
	nc, err := nats.Connect(aURL, nats.CustomInboxPrefix(schema.ServiceInbox("alpha")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	refused := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: allowed", what)
		}
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }
	c, cancel := short()
	_, err = js.Consumer(c, schema.StreamServiceEvents, schema.ServiceEventsConsumerName("beta"))
	cancel()
	refused("reading beta's consumer", err)
	c, cancel = short()
	_, err = nc.RequestWithContext(c, "$JS.API.CONSUMER.MSG.NEXT.SVC_EVENTS.svc-beta", []byte(`{"batch":1,"expires":200000000}`))
	cancel()
	refused("pulling beta's consumer", err)
	c, cancel = short()
	_, err = js.Stream(c, schema.StreamChat)
	cancel()
	refused("looking up CHAT", err)
	c, cancel = short()
	_, err = nc.RequestWithContext(c, "$JS.API.DIRECT.GET.CHAT", []byte(`{"seq":1}`))
	cancel()
	refused("reading CHAT by seq", err)
	c, cancel = short()
	_, err = js.CreateConsumer(c, schema.StreamChat, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	cancel()
	refused("a consumer on CHAT", err)
	c, cancel = short()
	_, err = js.CreateConsumer(c, schema.StreamServiceEvents, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	cancel()
	refused("a consumer of its own making on SVC_EVENTS", err)
	c, cancel = short()
	_, err = js.Stream(c, schema.StreamServiceEvents)
	cancel()
	refused("looking up SVC_EVENTS", err)
	for _, subj := range []string{"chat.svcev.>", "chat.msg.>", "chat.user.>"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	var denied []string
	for len(denied) < 3 {
		select {
		case err := <-violations:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), "Subscription") {
				denied = append(denied, err.Error())
			}
		case <-deadline:
			t.Fatalf("subscriptions refused: %v; want chat.svcev.>, chat.msg.>, chat.user.>", denied)
		}
	}
}
