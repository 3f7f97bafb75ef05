package schema_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// TestUpgradeAllowsMsgTTL: a CHAT stream made before disappearing
// messages (AllowMsgTTL off) refuses a message with Nats-TTL; Ensure
// turns it on in place, keeping what the stream holds, and from then on
// a message with Nats-TTL is stored and removed once its TTL passed.
func TestUpgradeAllowsMsgTTL(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	old := schema.ChatStream(schema.Config{})
	old.AllowMsgTTL = false
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	kept, err := js.Publish(ctx, schema.Msg("c1"), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	withTTL := func() *nats.Msg {
		m := nats.NewMsg(schema.Msg("c1"))
		m.Data = []byte(`{}`)
		m.Header.Set(schema.HeaderTTL, "1")
		return m
	}
	if _, err := js.PublishMsg(ctx, withTTL()); err == nil {
		t.Fatal("the old stream stored a message with Nats-TTL")
	}
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	if !st.CachedInfo().Config.AllowMsgTTL {
		t.Fatal("Ensure left AllowMsgTTL off")
	}
	if _, err := st.GetMsg(ctx, kept.Sequence); err != nil {
		t.Fatalf("the upgrade lost a message: %v", err)
	}
	ack, err := js.PublishMsg(ctx, withTTL())
	if err != nil {
		t.Fatalf("publish with Nats-TTL after the upgrade: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := st.GetMsg(ctx, ack.Sequence)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a message with Nats-TTL 1 is still there after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Ensuring again changes nothing, and cannot turn it off.
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetMsg(ctx, kept.Sequence); err != nil {
		t.Fatalf("the message without TTL went: %v", err)
	}
}
