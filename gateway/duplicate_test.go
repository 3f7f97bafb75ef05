package gateway

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// A retry whose original the stream no longer holds (trimmed after the
// store took it, within the de-duplication window) is answered from the
// store: the original seq and time, marked duplicate.
func TestDuplicateOfTrimmedOriginal(t *testing.T) {
	h := newHarness(t)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	alice := h.dial("alice")
	send := func() protocol.Ack {
		var ack protocol.Ack
		mustDo(t, alice, req(protocol.TypeSend, func(r *protocol.Request) {
			r.Conv, r.ClientID, r.Body = "g1", "m-1", json.RawMessage(`{"text":"hi"}`)
		}), &ack)
		return ack
	}
	ack := send()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := h.js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	// The store has it, at a time the stream's copy would not give: the
	// answer must come from the store.
	const storedTS = "2026-01-02T03:04:05.678Z"
	h.msgs.put(&protocol.Message{Conv: "g1", Seq: ack.Seq, Sender: "alice", ClientID: "m-1", TS: storedTS, Body: json.RawMessage(`{"text":"hi"}`)})
	// CHAT denies deletes; the trimmer purges below a seq.
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(ack.Seq+1)); err != nil {
		t.Fatal(err)
	}

	again := send()
	if !again.Duplicate || again.Seq != ack.Seq || again.TS != storedTS {
		t.Fatalf("retry acked %+v; want a duplicate of seq %d at the stored time %s", again, ack.Seq, storedTS)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("the retry stored a message again: %d in the stream", info.State.Msgs)
	}
}
