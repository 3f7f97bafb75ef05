package fanout_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/fanout"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/natstest"
)

// TestStopInterruptsALongDelivery: adding 1,000 users to a group of
// 1,000 is two million member pushes. A worker told to stop must not
// finish them first (a process's shutdown deadline ran out behind such a
// delivery): it stops between publishes and leaves the event
// unacknowledged, so the next worker delivers it again from the start.
func TestStopInterruptsALongDelivery(t *testing.T) { stopDuringAdd(t, 1000, 1000) }

// The same with frames of fewer than 1,024 subjects (900 users added to a
// group of 100: 900 frames of 1,000 subjects): the stop is looked for
// between frames too, not only every 1,024 publishes of one frame.
func TestStopInterruptsManySmallFrames(t *testing.T) { stopDuringAdd(t, 100, 900) }

// stopDuringAdd adds added users to a group of size members and stops the
// worker once it has published 20,000 of the member pushes.
func stopDuringAdd(t *testing.T, size, added int) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := make([]string, size-1)
	for i := range first {
		first[i] = fmt.Sprintf("u%04d", i)
	}
	conv := group(t, h, "owner", first...)
	nc, js := natstest.Connect(t, h.srv)
	convs, err := conversation.New(ctx, conversation.Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := history.NewStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fanout.New(fanout.Config{}, nc, js, convs, stream).Run(runCtx) }()

	more := make([]string, added)
	for i := range more {
		more[i] = fmt.Sprintf("v%04d", i)
	}
	owner := conversation.Actor{User: "owner", Session: "s-owner"}
	if _, _, err := h.convs.AddMembers(ctx, owner, conv, more); err != nil {
		t.Fatal(err)
	}
	total := uint64((size + added) * added) // each member hears of each added user
	for nc.Stats().OutMsgs < 20_000 {
		if ctx.Err() != nil {
			t.Fatalf("the worker published %d pushes in a minute", nc.Stats().OutMsgs)
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out := nc.Stats().OutMsgs; out >= total/2 {
		t.Fatalf("the worker published %d pushes before it stopped, want it to stop within a few thousand of being told (the event has %d)", out, total)
	}
}
