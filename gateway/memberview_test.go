package gateway

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// The send views are bounded: past the bound the least recently used
// view goes, and a view in use stays.
func TestViewsBounded(t *testing.T) {
	const max = 100
	c := newViews(max)
	k := func(i int) viewKey { return viewKey{"c" + strconv.Itoa(i), "u"} }
	for i := range max {
		c.put(k(i), "chat.member.c", uint64(i), 0)
	}
	if _, ok := c.get(k(0)); !ok {
		t.Fatal("a kept view is missing")
	}
	for i := max; i < 3*max; i++ {
		c.put(k(i), "chat.member.c", uint64(i), 0)
		if n := c.len(); n > max {
			t.Fatalf("%d views kept, bound %d", n, max)
		}
		if i%2 == 0 {
			c.get(k(0)) // in use
		}
	}
	if v, ok := c.get(k(0)); !ok || v.seq != 0 {
		t.Errorf("the view in use was evicted (%d, %v)", v.seq, ok)
	}
	if _, ok := c.get(k(1)); ok {
		t.Error("the least recently used view was kept")
	}
	c.put(k(0), "chat.member.c", 7, 0)
	if v, _ := c.get(k(0)); v.seq != 7 || v.subject != "chat.member.c" {
		t.Errorf("a view read again kept %+v, want seq 7", v)
	}
	c.drop(k(0))
	if _, ok := c.get(k(0)); ok {
		t.Error("a dropped view is kept")
	}
}

// On a clustered stream JetStream lets one publish with a precondition on
// a subject be in flight and refuses the others at once (10164): senders
// in one conversation at the same time are each stored, tried again
// without a read, not answered with an error.
func TestSendsAtOnceOnACluster(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	gwNC, gwJS := c.Connect(t)
	nc, js := c.Connect(t)
	h := harnessOn(t, schema.Config{Replicas: 3}, gwNC, gwJS, nc, js, func(c *Config) {
		c.MemberViews = 100
		c.RateBurst, c.RateSustained = 1000, 1000
	})
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	const senders, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for w := range senders {
		cl := h.dial("alice")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- do(t, cl, req(protocol.TypeSend, func(r *protocol.Request) {
					r.Conv, r.ClientID, r.Body = "g1", fmt.Sprintf("w%d-%d", w, i), json.RawMessage(`{"text":"hi"}`)
				}), nil)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			t.Log(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent sends failed", failed, senders*each)
	}
	if n := h.convs.calls("MemberView"); n != 1 {
		t.Errorf("%d views read, want 1 (one user, no membership change)", n)
	}
	if n := h.convs.calls("Membership"); n != 0 {
		t.Errorf("%d member keys read with views kept, want 0", n)
	}
}
