package presence

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
)

// runService runs a presence service until the returned stop is called
// (or the test ends).
func runService(t *testing.T, e *env) (stop func()) {
	t.Helper()
	return runServiceOn(t, e, e.js)
}

// runServiceOn runs a presence service whose bucket is js's.
func runServiceOn(t *testing.T, e *env, js jetstream.JetStream) (stop func()) {
	t.Helper()
	ctx := context.Background()
	convs, err := conversation.New(ctx, conversation.Config{}, e.js)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(ctx, ServiceConfig{Logger: testLogger(t)}, e.nc, js, convs)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// events collects the transitions published on subject.
func events(t *testing.T, nc *nats.Conn, subject string) <-chan Event {
	t.Helper()
	ch := make(chan Event, 100)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var ev Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Errorf("presence event %q: %v", m.Data, err)
			return
		}
		ch <- ev
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

// next returns the next event about user, skipping others.
func next(t *testing.T, ch <-chan Event, user string, within time.Duration) Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-ch:
			if ev.User == user {
				return ev
			}
		case <-deadline:
			t.Fatalf("no presence event about %s within %v", user, within)
		}
	}
}

// none fails if an event about user arrives within d.
func none(t *testing.T, ch <-chan Event, user string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-ch:
			if ev.User == user {
				t.Fatalf("unexpected presence event %+v", ev)
			}
		case <-deadline:
			return
		}
	}
}

func state(t *testing.T, kv jetstream.KeyValue, uid string) State {
	t.Helper()
	st, err := Get(context.Background(), kv, uid)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// direct makes a and b contacts: a direct conversation a started and b
// accepted.
func direct(t *testing.T, e *env, a, b string) {
	t.Helper()
	convs := request(t, e, a, b)
	if _, err := convs.Accept(context.Background(), conversation.Actor{User: b}, directConv(t, convs, a, b)); err != nil {
		t.Fatal(err)
	}
}

// request opens a direct conversation from a to b that b has not accepted.
func request(t *testing.T, e *env, a, b string) *conversation.Store {
	t.Helper()
	convs, err := conversation.New(context.Background(), conversation.Config{}, e.js)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := convs.CreateDirect(context.Background(), conversation.Actor{User: a}, b); err != nil {
		t.Fatal(err)
	}
	return convs
}

func directConv(t *testing.T, convs *conversation.Store, a, b string) string {
	t.Helper()
	d, _, err := convs.CreateDirect(context.Background(), conversation.Actor{User: a}, b)
	if err != nil {
		t.Fatal(err)
	}
	return d.Conv
}

// A user's first device coming online and last device leaving are
// announced, to the user's contacts as well; devices in between are not.
func TestServiceFirstOnLastOff(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	direct(t, e, "bob", "alice")
	all := events(t, e.nc, schema.Presence("*"))
	toBob := events(t, e.nc, schema.User("bob", schema.EventPresence))
	runService(t, e)
	tr := newTracker(t, e.js, TrackerConfig{Gateway: "gw1", LeaseTTL: 10 * time.Second})
	if err := tr.Connected(ctx, "bob", "b1", ""); err != nil {
		t.Fatal(err)
	}
	next(t, all, "bob", 5*time.Second)

	if err := tr.Connected(ctx, "alice", "phone", "phone"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, all, "alice", 5*time.Second); !ev.Online || ev.Devices != 1 {
		t.Fatalf("first device: %+v", ev)
	}
	if ev := next(t, toBob, "alice", 5*time.Second); !ev.Online {
		t.Fatalf("bob heard %+v", ev)
	}
	if err := tr.Connected(ctx, "alice", "laptop", "laptop"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "two devices recorded", func() bool { return state(t, e.kv, "alice").Devices == 2 })
	if err := tr.Disconnected(ctx, "alice", "phone"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "one device recorded", func() bool { return state(t, e.kv, "alice").Devices == 1 })
	none(t, all, "alice", 300*time.Millisecond)

	if err := tr.Disconnected(ctx, "alice", "laptop"); err != nil {
		t.Fatal(err)
	}
	ev := next(t, all, "alice", 5*time.Second)
	if ev.Online || ev.LastSeen == "" {
		t.Fatalf("last device: %+v", ev)
	}
	if ev := next(t, toBob, "alice", 5*time.Second); ev.Online {
		t.Fatalf("bob heard %+v", ev)
	}
	if st := state(t, e.kv, "alice"); st.Online || st.LastSeen.IsZero() {
		t.Fatalf("recorded state after the last device: %+v", st)
	}
	if st := state(t, e.kv, "nobody"); st.Online {
		t.Fatalf("a user never seen is %+v", st)
	}
}

// A gateway that dies without cleaning up stops renewing its lease; when
// the lease expires the service takes its users offline and removes
// their keys.
func TestServiceLeaseExpiryOnGatewayDeath(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	all := events(t, e.nc, schema.Presence("*"))
	runService(t, e)
	gnc, err := e.srv.Connect("dying-gateway")
	if err != nil {
		t.Fatal(err)
	}
	gjs, err := jetstream.New(gnc)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracker(t, gjs, TrackerConfig{Gateway: "gw1", LeaseTTL: time.Second})
	if err := tr.Connected(ctx, "alice", "s1", ""); err != nil {
		t.Fatal(err)
	}
	next(t, all, "alice", 5*time.Second)
	died := time.Now()
	gnc.Close()
	if ev := next(t, all, "alice", 6*time.Second); ev.Online {
		t.Fatalf("after the gateway died: %+v", ev)
	}
	t.Logf("offline announced %v after the gateway died (lease 1 s)", time.Since(died))
	waitFor(t, 2*time.Second, "dead gateway's key removed", func() bool {
		return !stored(t, e.kv, connKey("alice", "gw1", "s1"))
	})
}

// A gateway cut off for longer than its lease loses its users to the
// service, and gets them back once it renews: its rewrite wins over the
// service's purges of the keys it saw.
func TestServiceLeaseLapseRecovers(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	all := events(t, e.nc, schema.Presence("*"))
	runService(t, e)
	fj := newFaultJS(t, e)
	tr := newTracker(t, fj, TrackerConfig{Gateway: "gw1", LeaseTTL: time.Second})
	if err := tr.Connected(ctx, "alice", "s1", ""); err != nil {
		t.Fatal(err)
	}
	next(t, all, "alice", 5*time.Second)
	fj.failLease.Store(true)
	if ev := next(t, all, "alice", 6*time.Second); ev.Online {
		t.Fatalf("after the lease lapsed: %+v", ev)
	}
	fj.failLease.Store(false)
	if ev := next(t, all, "alice", 5*time.Second); !ev.Online {
		t.Fatalf("after the lease came back: %+v", ev)
	}
	time.Sleep(500 * time.Millisecond)
	if !stored(t, e.kv, connKey("alice", "gw1", "s1")) || !state(t, e.kv, "alice").Online {
		t.Fatal("alice's connection not restored")
	}
}

// When a gateway's lease lapses, the service purges its keys; if the
// gateway has renewed and written a key again before that purge lands,
// the purge must not take the key, and the connected user, away.
func TestServiceDropDoesNotUndoRewrite(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	key := connKey("alice", "gw1", "s1")
	svcJS := newFaultJS(t, e)
	purge := svcJS.kv.holdDelete(key)
	runServiceOn(t, e, svcJS)
	gwJS := newFaultJS(t, e)
	tr := newTracker(t, gwJS, TrackerConfig{Gateway: "gw1", LeaseTTL: time.Second})
	if err := tr.Connected(ctx, "alice", "s1", ""); err != nil {
		t.Fatal(err)
	}
	first, err := e.kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	gwJS.failLease.Store(true)
	select {
	case <-purge.held:
	case <-time.After(6 * time.Second):
		t.Fatal("the service did not purge the keys of a gateway whose lease lapsed")
	}
	gwJS.failLease.Store(false)
	waitFor(t, 5*time.Second, "the gateway writes its key again", func() bool {
		e, err := e.kv.Get(ctx, key)
		return err == nil && e.Revision() > first.Revision()
	})
	close(purge.release)
	<-purge.done
	time.Sleep(300 * time.Millisecond)
	if !stored(t, e.kv, key) {
		t.Fatal("the service's late purge removed the key the gateway wrote again")
	}
	waitFor(t, 2*time.Second, "alice recorded online", func() bool { return state(t, e.kv, "alice").Online })
}

// A restarted service announces exactly the transitions it missed.
func TestServiceRestartAnnouncesMissed(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	all := events(t, e.nc, schema.Presence("*"))
	tr := newTracker(t, e.js, TrackerConfig{Gateway: "gw1", LeaseTTL: 10 * time.Second})
	stop := runService(t, e)
	if err := tr.Connected(ctx, "alice", "s1", ""); err != nil {
		t.Fatal(err)
	}
	next(t, all, "alice", 5*time.Second)
	stop()
	// While no service runs: alice leaves, carol arrives.
	if err := tr.Disconnected(ctx, "alice", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Connected(ctx, "carol", "s2", ""); err != nil {
		t.Fatal(err)
	}
	stop = runService(t, e)
	heard := make(map[string]bool)
	deadline := time.After(5 * time.Second)
	for len(heard) < 2 {
		select {
		case ev := <-all:
			if _, twice := heard[ev.User]; twice {
				t.Fatalf("%s announced twice: %+v", ev.User, ev)
			}
			heard[ev.User] = ev.Online
		case <-deadline:
			t.Fatalf("after the restart only %v was announced", heard)
		}
	}
	if online, ok := heard["alice"]; !ok || online {
		t.Errorf("alice after the restart: %v", heard)
	}
	if online, ok := heard["carol"]; !ok || !online {
		t.Errorf("carol after the restart: %v", heard)
	}
	// Nothing changed before the next restart: nothing is announced.
	stop()
	runService(t, e)
	none(t, all, "alice", 500*time.Millisecond)
	none(t, all, "carol", 0)
}
