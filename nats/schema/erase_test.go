package schema_test

import (
	"testing"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// A CHAT made before erasure denies deletes, which JetStream never lets an
// update undo: Ensure keeps it denying them instead of failing (the
// upgrade of an existing deployment), and a new CHAT allows them.
func TestEnsureKeepsDenyDelete(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	old := schema.ChatStream(schema.Config{})
	old.DenyDelete = true
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatalf("Ensure on a CHAT that denies deletes: %v", err)
	}
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	if !st.CachedInfo().Config.DenyDelete {
		t.Fatal("Ensure changed DenyDelete")
	}

	s2 := natstest.Start(t)
	_, js2 := natstest.Connect(t, s2)
	if err := schema.Ensure(ctx, js2, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	if st, err := js2.Stream(ctx, schema.StreamChat); err != nil || st.CachedInfo().Config.DenyDelete {
		t.Fatalf("a new CHAT denies deletes: %v", err)
	}
}
