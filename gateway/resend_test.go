package gateway

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// countLookups is a Counter for Metrics.ResendLookups.
type countLookups struct{ n atomic.Int64 }

func (c *countLookups) Inc() { c.n.Add(1) }

// resendWindows are a short JetStream window and the de-dup window of the
// promise, scaled down for the tests.
var resendWindows = schema.Config{Duplicates: time.Minute, FastDuplicates: time.Second}

// sendAs sends clientID's message "hi" in conv, marked as a resend or not.
func sendAs(t *testing.T, c *client.Client, conv, clientID string, resend bool) protocol.Ack {
	t.Helper()
	var ack protocol.Ack
	mustDo(t, c, req(protocol.TypeSend, func(r *protocol.Request) {
		r.Conv, r.ClientID, r.Resend, r.Body = conv, clientID, resend, json.RawMessage(`{"text":"hi"}`)
	}), &ack)
	return ack
}

// streamMsgs is how many messages CHAT holds.
func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// pastFastWindow waits until JetStream has forgotten the ids of what was
// stored so far (its window is 1 s here).
func pastFastWindow() { time.Sleep(2500 * time.Millisecond) }

// A resend past JetStream's own duplicate window, on another gateway (as
// after a restart), still gets the original seq and ts and stores
// nothing; first sends are never looked up; an unmarked repeat is only
// caught within the short window (the contract for clients that do not
// mark resends); a marked resend of something never stored is stored.
func TestResendPastTheFastWindow(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	ns := natstest.Start(t)
	gwNC, gwJS := natstest.Connect(t, ns)
	nc, js := natstest.Connect(t, ns)
	var lookupsA, lookupsB countLookups
	a := harnessOn(t, resendWindows, gwNC, gwJS, nc, js)
	gw2NC, gw2JS := natstest.Connect(t, ns)
	b := harnessOn(t, resendWindows, gw2NC, gw2JS, nc, js)
	// Before any connection: sessions read it.
	a.srv.metrics.ResendLookups, b.srv.metrics.ResendLookups = &lookupsA, &lookupsB
	for _, h := range []*harness{a, b} {
		h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	}
	alice := a.dial("alice")
	first := map[string]protocol.Ack{}
	for _, id := range []string{"m-1", "m-2", "m-3"} {
		first[id] = sendAs(t, alice, "g1", id, false)
	}
	// A marked resend inside the fast window is caught by the publish
	// whether or not it is looked up.
	if again := sendAs(t, alice, "g1", "m-1", true); !again.Duplicate || again.Seq != first["m-1"].Seq {
		t.Fatalf("marked resend inside the fast window acked %+v, want a duplicate of %d", again, first["m-1"].Seq)
	}
	if n := lookupsA.n.Load(); n != 1 {
		t.Fatalf("%d lookups after 3 first sends and 1 resend, want 1: first sends must not be looked up", n)
	}
	pastFastWindow()
	stored := streamMsgs(t, js)

	aliceB := b.dial("alice")
	for _, id := range []string{"m-1", "m-2"} {
		again := sendAs(t, aliceB, "g1", id, true)
		if !again.Duplicate || again.Seq != first[id].Seq || again.TS != first[id].TS {
			t.Fatalf("resend of %s past the fast window acked %+v, want a duplicate of %+v", id, again, first[id])
		}
	}
	if n := streamMsgs(t, js); n != stored {
		t.Fatalf("the resends stored %d messages", n-stored)
	}
	if n := lookupsB.n.Load(); n != 2 {
		t.Fatalf("%d lookups on the second gateway, want 2 (one per marked resend)", n)
	}

	// The contract for a client that does not mark its resends: only the
	// short window covers it.
	if again := sendAs(t, aliceB, "g1", "m-3", false); again.Duplicate || again.Seq == first["m-3"].Seq {
		t.Fatalf("unmarked repeat past the fast window acked %+v: the fast window is not what the test set", again)
	}
	if n := lookupsB.n.Load(); n != 2 {
		t.Fatalf("an unmarked send was looked up (%d lookups)", n)
	}
	// A marked resend whose original never arrived is stored, once.
	fresh := sendAs(t, aliceB, "g1", "m-9", true)
	if fresh.Duplicate || fresh.Seq == 0 {
		t.Fatalf("marked resend of a message never stored acked %+v, want it stored", fresh)
	}
	if again := sendAs(t, aliceB, "g1", "m-9", true); !again.Duplicate || again.Seq != fresh.Seq {
		t.Fatalf("its repeat acked %+v, want a duplicate of %d", again, fresh.Seq)
	}
}

// A marked resend past the fast window after the node leading CHAT died
// still gets the original seq: the lookup reads the replicated stream,
// not a leader's memory (the new leader's duplicate window holds only
// what it rebuilt from the last second).
func TestResendAfterLeaderFailover(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	gwNC, gwJS := c.Connect(t)
	nc, js := c.Connect(t)
	sc := resendWindows
	sc.Replicas = 3
	h := harnessOn(t, sc, gwNC, gwJS, nc, js)
	var lookups countLookups
	h.srv.metrics.ResendLookups = &lookups
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	first := sendAs(t, h.dial("alice"), "g1", "m-1", false)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.ServerNamed(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("no node named %q", info.Cluster.Leader)
	}
	if err := leader.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	pastFastWindow()

	alice := h.dial("alice")
	var again protocol.Ack
	for {
		err := do(t, alice, req(protocol.TypeSend, func(r *protocol.Request) {
			r.Conv, r.ClientID, r.Resend, r.Body = "g1", "m-1", true, json.RawMessage(`{"text":"hi"}`)
		}), &again)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("resend during the election: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !again.Duplicate || again.Seq != first.Seq || again.TS != first.TS {
		t.Fatalf("resend after the failover acked %+v, want a duplicate of %+v", again, first)
	}
	if lookups.n.Load() == 0 {
		t.Fatal("the resend was not looked up")
	}
	for {
		info, err := st.Info(ctx)
		if err == nil {
			if info.State.Msgs != 1 {
				t.Fatalf("%d messages stored, want the original alone", info.State.Msgs)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
