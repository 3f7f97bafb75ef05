package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/admin"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
)

// operator connects to e's NATS over its socket as the operator user,
// the way natter admin does, and returns an Admin on it.
func (e *env) operator(t testing.TB, cfg admin.Config) (*admin.Admin, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(e.app.NATS().OperatorURL(), nats.Name("natter-admin-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	a, err := admin.New(ctxT(t), cfg, nc)
	if err != nil {
		t.Fatal(err)
	}
	return a, nc
}

// waitConnections waits until PRESENCE lists n connections of uid.
func waitConnections(t *testing.T, a *admin.Admin, uid string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := a.User(ctxT(t), uid)
		if err == nil && len(r.Connections) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: want %d connections listed; last report %+v, %v", uid, n, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// natter admin user kick closes every WebSocket connection of the user,
// on both gateways of the cluster, with the documented code 4009, and no
// one else's; the report counts them.
func TestAdminKick(t *testing.T) {
	e := start(t)
	g2 := e.startGateway(t)
	a, _ := e.operator(t, admin.Config{})
	alice1 := e.dial(t, "alice")
	alice2 := e.dial(t, "alice")
	alice3 := g2.dial(t, "alice")
	bob := e.dial(t, "bob")
	waitConnections(t, a, "alice", 3)

	r, err := a.Kick(ctxT(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []interface {
		Done() <-chan struct{}
		CloseStatus() int
		CloseReason() string
	}{alice1, alice2, alice3} {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("alice's connection %d is still open", i)
		}
		if got := c.CloseStatus(); got != protocol.CloseKicked || c.CloseReason() != "closed by an operator" {
			t.Fatalf("alice's connection %d closed with %d %q, want %d", i, got, c.CloseReason(), protocol.CloseKicked)
		}
	}
	if r.Before != 3 || r.Closed != 3 || len(r.Open) != 0 {
		t.Fatalf("kick report %+v, want 3 of 3 closed", r)
	}
	if err := bob.Ping(ctxT(t)); err != nil {
		t.Fatalf("bob's connection after alice's kick: %v", err)
	}
	// The kick revokes nothing: alice may come back.
	if err := e.dial(t, "alice").Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// natter admin conv add and remove go through the conversation store like
// a member's add: the added user's client gets the conversation pushed
// and may send, the members get a member push without "by"; removed, the
// user may no longer send. Unknown ids are clear errors.
func TestAdminConvAddRemove(t *testing.T) {
	e := start(t)
	a, _ := e.operator(t, admin.Config{})
	alice := e.dial(t, "alice")
	carol := e.dial(t, "carol")
	g, err := alice.CreateGroup(ctxT(t), "ops", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.SetAddPolicy(ctxT(t), protocol.AddPolicyNobody); err != nil {
		t.Fatal(err)
	}

	ch, err := a.AddMember(ctxT(t), g.Conv, "carol")
	if err != nil || !ch.Changed {
		t.Fatalf("add carol: %+v, %v", ch, err)
	}
	pushed := nextEvent(t, carol, protocol.TypeConversation)
	if conv, _ := pushed["conversation"].(map[string]any); conv == nil || conv["conv"] != g.Conv {
		t.Fatalf("carol got %v, want the conversation %s", pushed, g.Conv)
	}
	ev := nextEvent(t, alice, protocol.TypeMember)
	if ev["conv"] != g.Conv || ev["user"] != "carol" || ev["action"] != "added" || ev["by"] != nil {
		t.Fatalf("alice got %v, want carol added by no user", ev)
	}
	if _, err := carol.Send(ctxT(t), g.Conv, "c1", text("hello")); err != nil {
		t.Fatalf("carol sends after the operator added her: %v", err)
	}
	if ch, err := a.AddMember(ctxT(t), g.Conv, "carol"); err != nil || ch.Changed {
		t.Fatalf("adding carol again: %+v, %v; want no change", ch, err)
	}

	if _, err := a.RemoveMember(ctxT(t), g.Conv, "carol"); err != nil {
		t.Fatal(err)
	}
	for ev = nextEvent(t, carol, protocol.TypeMember); ev["action"] == "added"; ev = nextEvent(t, carol, protocol.TypeMember) {
	}
	if ev["user"] != "carol" || ev["action"] != "removed" {
		t.Fatalf("carol got %v, want her removal", ev)
	}
	_, err = carol.Send(ctxT(t), g.Conv, "c2", text("still here?"))
	wantCode(t, err, protocol.CodeForbidden)

	if _, err := a.AddMember(ctxT(t), "g_nope", "carol"); !errors.Is(err, admin.ErrUnknownConversation) || !strings.Contains(err.Error(), "g_nope") {
		t.Fatalf("add to an unknown conversation: %v", err)
	}
	if _, err := a.RemoveMember(ctxT(t), g.Conv, "zed"); err == nil || !strings.Contains(err.Error(), "zed") {
		t.Fatalf("remove a non-member: %v", err)
	}
	if _, err := a.Conv(ctxT(t), "g_nope"); !errors.Is(err, admin.ErrUnknownConversation) {
		t.Fatalf("show an unknown conversation: %v", err)
	}
	if _, err := a.User(ctxT(t), "nobody-at-all"); !errors.Is(err, admin.ErrUnknownUser) {
		t.Fatalf("show an unknown user: %v", err)
	}
}

// natter admin user show and conv show report a real conversation: roles,
// read markers, last seq, partition, presence, connections, devices
// without their tokens, block list; the JSON parses back to the same.
func TestAdminShow(t *testing.T) {
	e := start(t)
	a, nc := e.operator(t, admin.Config{})
	alice := e.dial(t, "alice")
	bob := e.dial(t, "bob")
	g, err := alice.CreateGroup(ctxT(t), "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range 3 {
		ack, err := alice.Send(ctxT(t), g.Conv, "k"+string(rune('a'+i)), text("hi"))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Seq
	}
	if err := alice.MarkRead(ctxT(t), g.Conv, last); err != nil {
		t.Fatal(err)
	}
	if err := bob.MarkRead(ctxT(t), g.Conv, last-1); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Block(ctxT(t), "mallory"); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	pkv, err := js.KeyValue(ctxT(t), schema.BucketPush)
	if err != nil {
		t.Fatal(err)
	}
	const token = "apns-device-token-secret-0123456789abcdef"
	dev, err := pushnotify.NewStore(pushnotify.StoreConfig{}, pkv).Register(ctxT(t), "bob", "apns", token)
	if err != nil {
		t.Fatal(err)
	}
	waitConnections(t, a, "bob", 1)

	u, err := a.User(ctxT(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	want := admin.UserConversation{Conv: g.Conv, Kind: "group", Title: "team", Role: admin.RoleMember, ReadSeq: last - 1}
	if len(u.Conversations) != 1 || u.Conversations[0] != want {
		t.Fatalf("bob's conversations %+v, want %+v", u.Conversations, want)
	}
	if !slices.Equal(u.Blocked, []string{"mallory"}) || len(u.Devices) != 1 || u.Devices[0].Platform != "apns" || u.Devices[0].Fingerprint != dev.ID {
		t.Fatalf("bob's block list %v, devices %+v", u.Blocked, u.Devices)
	}
	if len(u.Connections) != 1 || u.Connections[0].Gateway == "" {
		t.Fatalf("bob's connections %+v", u.Connections)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(u); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), token) || strings.Contains(buf.String(), token[:12]) {
		t.Fatalf("user show leaks the push token: %s", buf.String())
	}
	var back admin.UserReport
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.User != "bob" || back.Conversations[0] != want {
		t.Fatalf("user show JSON parsed back to %+v, %v", back, err)
	}
	buf.Reset()
	if err := u.WriteTable(&buf); err != nil || !strings.Contains(buf.String(), g.Conv) || strings.Contains(buf.String(), token[:12]) {
		t.Fatalf("user show table: %v\n%s", err, buf.String())
	}

	c, err := a.Conv(ctxT(t), g.Conv)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := schema.ReadLayout(ctxT(t), js)
	if err != nil {
		t.Fatal(err)
	}
	wantMembers := []admin.Member{{User: "alice", Role: admin.RoleOwner, ReadSeq: last}, {User: "bob", Role: admin.RoleMember, ReadSeq: last - 1}}
	if c.Kind != "group" || c.Owner != "alice" || c.LastSeq != last || !slices.Equal(c.Members, wantMembers) ||
		c.Partition != layout.Partition(g.Conv) || c.FanoutConsumer != schema.ConsumerFanoutPartition(c.Partition) {
		t.Fatalf("conv show %+v, want last seq %d, members %+v, partition %d", c, last, wantMembers, layout.Partition(g.Conv))
	}
	buf.Reset()
	if err := c.WriteTable(&buf); err != nil || !strings.Contains(buf.String(), c.FanoutConsumer) {
		t.Fatalf("conv show table: %v\n%s", err, buf.String())
	}
}

// natter admin stream lag lists every consumer of CHAT with what it has
// outstanding: a working one has no lag, a durable nobody pulls shows its
// pending messages and their age, past the hot window once the clock is
// eight days on.
func TestAdminStreamLag(t *testing.T) {
	e := start(t)
	a, nc := e.operator(t, admin.Config{})
	js, _ := jetstream.New(nc)
	alice := e.dial(t, "alice")
	d, err := alice.CreateDirect(ctxT(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	// The conversation's message stream: CHAT, or its partition stream.
	layout := messageLayout(t, js)
	stream := layout.StreamOf(d.Conv)
	if _, err := js.CreateOrUpdateConsumer(ctxT(t), stream, jetstream.ConsumerConfig{Durable: "audit",
		FilterSubjects: []string{schema.StoredMsgWildcard}, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctxT(t), d.Conv, "k1", text("hi")); err != nil {
		t.Fatal(err)
	}
	// ofStream is the report of the conversation's stream.
	ofStream := func(r *admin.LagReport) *admin.LagReport {
		for _, s := range append([]*admin.LagReport{r}, r.Streams...) {
			if s.Stream == stream {
				return s
			}
		}
		t.Fatalf("no report of %s in %+v", stream, r)
		return nil
	}
	var all, r *admin.LagReport
	deadline := time.Now().Add(10 * time.Second)
	for {
		if all, err = a.StreamLag(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		r = ofStream(all)
		if c := findConsumer(r, schema.ConsumerHistory); c != nil && c.AckFloor == r.LastSeq || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(all.Streams) != len(layout.ChatStreams())-1 {
		t.Fatalf("%d more stream reports for streams %v", len(all.Streams), layout.ChatStreams())
	}
	var names []string
	if layout.Streams > 1 {
		// A partition stream is one fan-out partition: its own.
		if r.HotWindowSeconds != (7*24*time.Hour).Seconds() || r.Partitions != layout.Streams {
			t.Fatalf("stream %+v", r)
		}
		names = append(names, schema.ConsumerFanoutPartition(layout.StreamIndex(d.Conv)))
	} else {
		if r.HotWindowSeconds != (7*24*time.Hour).Seconds() || r.Partitions != schema.DefaultPartitions {
			t.Fatalf("stream %+v", r)
		}
		names = append(names, schema.ConsumerFanout)
		for p := range r.Partitions {
			names = append(names, schema.ConsumerFanoutPartition(p))
		}
	}
	names = append(names, schema.ConsumerHistory, schema.ConsumerPush)
	for _, n := range names {
		c := findConsumer(r, n)
		if c == nil {
			t.Fatalf("no consumer %s in %+v", n, r.Consumers)
		}
		if n == schema.ConsumerHistory && (c.AckFloor != r.LastSeq || c.LagSeconds != 0 || c.State != admin.StateOK) {
			t.Fatalf("history caught up: %+v", c)
		}
	}
	audit := findConsumer(r, "audit")
	if audit == nil || audit.Pending != 1 || audit.LagSeconds <= 0 || audit.LagSeconds > 60 || audit.State != admin.StateOK {
		t.Fatalf("a consumer nobody pulls: %+v", audit)
	}
	later, _ := e.operator(t, admin.Config{Now: func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }})
	r2, err := later.StreamLag(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if c := findConsumer(ofStream(r2), "audit"); c == nil || c.State != admin.StatePastWindow || c.OfHotWindow < 1 {
		t.Fatalf("eight days on, the consumer nobody pulls: %+v", c)
	}
	var buf bytes.Buffer
	if err := r2.WriteTable(&buf); err != nil || !strings.Contains(buf.String(), admin.StatePastWindow) {
		t.Fatalf("stream lag table: %v\n%s", err, buf.String())
	}
	buf.Reset()
	if err := json.NewEncoder(&buf).Encode(r); err != nil {
		t.Fatal(err)
	}
	var back admin.LagReport
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Consumers) != len(r.Consumers) {
		t.Fatalf("stream lag JSON parsed back to %+v, %v", back, err)
	}
}

func findConsumer(r *admin.LagReport, name string) *admin.ConsumerLag {
	for i := range r.Consumers {
		if r.Consumers[i].Name == name {
			return &r.Consumers[i]
		}
	}
	return nil
}
