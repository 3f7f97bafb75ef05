package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/presence"
	"github.com/natter-chat/natter/protocol"
)

func fastHeartbeat(c *app.Config) { c.Gateway.Heartbeat = time.Second }

// presenceOf waits for the next presence push about user.
func presenceOf(t *testing.T, c *client.Client, user string, within time.Duration) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		ev, err := c.NextEvent(ctx, protocol.TypePresence)
		if err != nil {
			t.Fatalf("no presence push about %s within %v: %v", user, within, err)
		}
		var m map[string]any
		_ = ev.Decode(&m)
		if m["user"] == user {
			return m
		}
	}
}

func queryPresence(t *testing.T, c *client.Client, users ...string) map[string]any {
	t.Helper()
	m, err := request(t, c, map[string]any{"type": "presence", "users": users})
	if err != nil {
		t.Fatal(err)
	}
	return m["users"].(map[string]any)
}

func TestPresenceMultiDevice(t *testing.T) {
	e := start(t, fastHeartbeat)
	bob := e.dial(t, "bob")
	contacts(t, e, bob, "alice")
	if got := queryPresence(t, bob, "alice")["alice"]; fmt.Sprint(got) != "map[online:false]" {
		t.Fatalf("a user never seen = %v", got)
	}
	phone := e.dial(t, "alice")
	if ev := presenceOf(t, bob, "alice", 5*time.Second); ev["online"] != true {
		t.Fatalf("first device: %v", ev)
	}
	laptop := e.dial(t, "alice")
	waitFor(t, 5*time.Second, func() bool {
		a, _ := queryPresence(t, bob, "alice")["alice"].(map[string]any)
		return a["online"] == true && a["devices"] == float64(2)
	})
	// The first device leaving changes nothing for others.
	_ = phone.Close()
	noEvent(t, bob, 500*time.Millisecond, protocol.TypePresence)
	// The last device leaving cleanly is announced within 2 s.
	closed := time.Now()
	_ = laptop.Close()
	ev := presenceOf(t, bob, "alice", 2*time.Second)
	if ev["online"] != false || ev["last_seen"] == nil {
		t.Fatalf("offline push = %v", ev)
	}
	t.Logf("offline announced %v after the clean close", time.Since(closed))
	a := queryPresence(t, bob, "alice")["alice"].(map[string]any)
	if a["online"] != false || a["last_seen"] == nil {
		t.Fatalf("presence after leaving = %v", a)
	}
	if _, err := time.Parse(time.RFC3339Nano, a["last_seen"].(string)); err != nil {
		t.Fatalf("last_seen %v: %v", a["last_seen"], err)
	}
}

func TestPresenceOnlyForCoMembers(t *testing.T) {
	e := start(t, fastHeartbeat)
	bob, mallory := e.dial(t, "bob"), e.dial(t, "mallory")
	contacts(t, e, bob, "alice")
	e.dial(t, "alice")
	presenceOf(t, bob, "alice", 5*time.Second)
	noEvent(t, mallory, 500*time.Millisecond, protocol.TypePresence)
	users := queryPresence(t, mallory, "alice", "bob", "mallory")
	if _, leak := users["alice"]; leak {
		t.Fatalf("mallory learned alice's presence: %v", users)
	}
	if _, leak := users["bob"]; leak {
		t.Fatalf("mallory learned bob's presence: %v", users)
	}
	if got := queryPresence(t, bob, "alice")["alice"].(map[string]any); got["online"] != true {
		t.Fatalf("bob's query = %v", got)
	}
}

// Presence of a user on gateway B reaches a contact on gateway A.
func TestPresenceAcrossGateways(t *testing.T) {
	e := start(t, fastHeartbeat)
	g2 := e.startGateway(t)
	bob := e.dial(t, "bob")
	contacts(t, e, bob, "alice")
	alice := g2.dial(t, "alice")
	if ev := presenceOf(t, bob, "alice", 5*time.Second); ev["online"] != true {
		t.Fatalf("online push = %v", ev)
	}
	_ = alice.Close()
	if ev := presenceOf(t, bob, "alice", 2*time.Second); ev["online"] != false {
		t.Fatalf("offline push = %v", ev)
	}
}

// The presence service can stop and start again without missing or
// inventing transitions.
func TestPresenceServiceRestart(t *testing.T) {
	e := start(t, fastHeartbeat, func(c *app.Config) { c.Roles = app.Roles{Gateway: true} })
	ctx := ctxT(t)
	nc, err := e.app.NATS().Connect("test-presence")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	convs, err := conversation.New(ctx, conversation.Config{Logger: testLogger()}, js)
	if err != nil {
		t.Fatal(err)
	}
	run := func() (stop func()) {
		svc, err := presence.NewService(ctx, presence.ServiceConfig{Logger: testLogger()}, nc, js, convs)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = svc.Run(rctx) }()
		return func() { cancel(); <-done }
	}
	// Count every transition published, per user and direction.
	var mu sync.Mutex
	announced := map[string]int{}
	sub, err := nc.Subscribe("chat.presence.*", func(m *nats.Msg) {
		var ev presence.Event
		_ = jsonUnmarshal(m.Data, &ev)
		mu.Lock()
		announced[fmt.Sprintf("%s:%v", ev.User, ev.Online)]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	bob := e.dial(t, "bob")
	if _, err := bob.CreateGroup(ctx, "g", "alice", "carol"); err != nil {
		t.Fatal(err)
	}
	stop := run()
	alice := e.dial(t, "alice")
	presenceOf(t, bob, "alice", 5*time.Second)
	stop()
	// While no service runs: alice leaves, carol arrives.
	_ = alice.Close()
	e.dial(t, "carol")
	time.Sleep(300 * time.Millisecond)
	stop = run()
	// stop changes below: the deferred call must stop the last service.
	defer func() { stop() }()
	got := map[string]bool{}
	for len(got) < 2 {
		ev := nextEvent(t, bob, protocol.TypePresence)
		got[fmt.Sprintf("%v:%v", ev["user"], ev["online"])] = true
	}
	if !got["alice:false"] || !got["carol:true"] {
		t.Fatalf("after the restart bob heard %v", got)
	}
	// A second restart with nothing changed announces nothing new.
	stop()
	stop = run()
	noEvent(t, bob, 700*time.Millisecond, protocol.TypePresence)
	mu.Lock()
	defer mu.Unlock()
	for k, n := range announced {
		if n != 1 {
			t.Errorf("transition %s announced %d times", k, n)
		}
	}
	for _, want := range []string{"alice:true", "alice:false", "carol:true", "bob:true"} {
		if announced[want] != 1 {
			t.Errorf("transition %s announced %d times, want 1 (all: %v)", want, announced[want], announced)
		}
	}
}

// In a 5,000-member group nobody hears anybody's presence: fan-out would
// grow with the square of the group. Members still ask with a query.
func TestPresenceLargeGroupNoFanout(t *testing.T) {
	// Creating 5,000 members takes several seconds on a busy machine.
	e := start(t, fastHeartbeat, func(c *app.Config) { c.Gateway.RequestTimeout = 2 * time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	owner := e.dial(t, "owner")
	members := make([]string, 0, 4999)
	for i := range 4999 {
		members = append(members, fmt.Sprintf("m%04d", i))
	}
	// One request names at most 1,000 users.
	g, err := owner.CreateGroup(ctx, "everyone", members[:999]...)
	if err != nil {
		t.Fatal(err)
	}
	for i := 999; i < len(members); i += 1000 {
		if err := owner.AddMembers(ctx, g.Conv, members[i:min(i+1000, len(members))]...); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := owner.Conversations(ctx); err != nil || len(list) != 1 || list[0].MemberCount != 5000 {
		t.Fatalf("conversations = %v, %v; want the group of 5,000", list, err)
	}
	nc, err := e.app.NATS().Connect("test-spy")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	pushes := 0
	sub, _ := nc.Subscribe("chat.user.*.presence", func(*nats.Msg) { mu.Lock(); pushes++; mu.Unlock() })
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		e.dial(t, members[i])
	}
	m0 := e.dial(t, "m0000")
	time.Sleep(time.Second)
	mu.Lock()
	n := pushes
	mu.Unlock()
	if n != 0 {
		t.Fatalf("%d presence pushes for members of a 5,000-member group", n)
	}
	if a := queryPresence(t, m0, "m0001")["m0001"].(map[string]any); a["online"] != true {
		t.Fatalf("query in the large group = %v", a)
	}
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A gateway killed with SIGKILL cleans nothing up; its users still go
// offline, through the expiry of its lease, within 2 × heartbeat + 5 s.
func TestPresenceGatewayKilled(t *testing.T) {
	e := start(t, fastHeartbeat)
	ctx := ctxT(t)
	gw := e.startGatewayProcess(t, "--heartbeat", "1s")
	bob := e.dial(t, "bob")
	contacts(t, e, bob, "alice")
	alice, err := client.Dial(ctx, gw.url(), checked(t, client.Options{Token: token(t, "alice")}))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if ev := presenceOf(t, bob, "alice", 5*time.Second); ev["online"] != true {
		t.Fatalf("online push = %v", ev)
	}
	killed := time.Now()
	if err := gw.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	ev := presenceOf(t, bob, "alice", 2*time.Second+5*time.Second)
	if ev["online"] != false {
		t.Fatalf("after the kill: %v", ev)
	}
	t.Logf("offline announced %v after SIGKILL of the gateway (heartbeat 1 s)", time.Since(killed))
}
