package e2e

import (
	"bufio"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Membership views (gateway/memberview.go): a send on a kept view reads
// nothing, and a view another process made stale is refused by JetStream
// and decided again.

// metricsGateway runs a second gateway process against e's NATS, with its
// /metrics served.
func (e *env) metricsGateway(t *testing.T) *env {
	t.Helper()
	return startWith(t, app.Config{
		HTTPAddr:    "127.0.0.1:0",
		MetricsAddr: "127.0.0.1:0",
		NATSURL:     e.app.NATS().RoleURL(natsrv.RoleGateway),
		Roles:       app.Roles{Gateway: true},
		Auth:        auth.Config{Secret: secret},
		Logger:      testLogger(),
	})
}

// counter reads a counter of e's /metrics.
func (e *env) counter(t *testing.T, name string) float64 {
	t.Helper()
	code, body := get(t, "http://"+e.app.MetricsAddr()+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Errorf("/metrics lacks %s", name)
	return 0
}

const (
	viewReads  = "natter_gateway_member_view_reads_total"
	staleViews = "natter_gateway_member_views_stale_total"
)

// countKVReads counts the reads of the CONVERSATIONS bucket made from now
// on, by any process: direct gets (a KV Get) and leader gets.
func countKVReads(t *testing.T, e *env) *atomic.Int64 {
	t.Helper()
	nc, err := e.app.NATS().Connect("kv-read-counter")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var n atomic.Int64
	kv := schema.KVStream(schema.BucketConversations)
	for _, subj := range []string{schema.DirectGetAPI(kv), schema.DirectGetAPI(kv) + ".>", schema.MsgGetAPI(kv)} {
		if _, err := nc.Subscribe(subj, func(*nats.Msg) { n.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// A member's send on a conversation it sent in before reads no key: no
// read of the CONVERSATIONS bucket by anyone while it sends.
func TestSendOnKeptViewReadsNothing(t *testing.T) {
	e := start(t)
	g2 := e.metricsGateway(t)
	ctx := ctxT(t)
	// alice reports no deliveries: a delivered report reads her member
	// key (one per conversation per second, not per message); this test
	// counts what sends read.
	alice := e.dialOpts(t, client.Options{Token: token(t, "alice"), DeliveredDelay: -1})
	bob := g2.dial(t, "bob")
	conv, err := alice.CreateGroup(ctx, "views", "bob")
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, bob, protocol.TypeConversation)
	if _, err := bob.Send(ctx, conv.Conv, "first", text("fills the view")); err != nil {
		t.Fatal(err)
	}
	nextMessage(t, alice)
	// The fan-out and the push dispatcher read the document on the first
	// message; let them finish before counting.
	time.Sleep(300 * time.Millisecond)
	reads, before := countKVReads(t, e), g2.counter(t, viewReads)
	const sends = 20
	for i := range sends {
		if _, err := bob.Send(ctx, conv.Conv, "m"+strconv.Itoa(i), text("hi")); err != nil {
			t.Fatal(err)
		}
		nextMessage(t, alice)
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("%d sends on a kept view made %d reads of %s, want none", sends, n, schema.BucketConversations)
	}
	if d := g2.counter(t, viewReads) - before; d != 0 {
		t.Errorf("%d sends on a kept view read %v views, want none", sends, d)
	}
}

// A member removed through another gateway after its gateway kept its
// view: the next send is refused with forbidden and never stored, and a
// member whose view went stale by a change that keeps them a member is
// decided again and stored.
func TestStaleViewRefusedAcrossGateways(t *testing.T) {
	e := start(t)
	g2 := e.metricsGateway(t)
	ctx := ctxT(t)
	alice := e.dial(t, "alice") // the owner, on gateway A
	bob := g2.dial(t, "bob")    // on gateway B
	carol := g2.dial(t, "carol")
	conv, err := alice.CreateGroup(ctx, "stale", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, bob, protocol.TypeConversation)
	for _, c := range []struct {
		name string
		send func() (*protocol.Ack, error)
	}{
		{"bob", func() (*protocol.Ack, error) { return bob.Send(ctx, conv.Conv, "b1", text("bob")) }},
		{"carol", func() (*protocol.Ack, error) { return carol.Send(ctx, conv.Conv, "c1", text("carol")) }},
	} {
		if _, err := c.send(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	reads, stale := g2.counter(t, viewReads), g2.counter(t, staleViews)

	// Gateway A changes membership twice; B's views of bob and carol
	// are stale.
	if err := alice.AddMembers(ctx, conv.Conv, "dave"); err != nil {
		t.Fatal(err)
	}
	if err := alice.RemoveMember(ctx, conv.Conv, "bob"); err != nil {
		t.Fatal(err)
	}
	_, err = bob.Send(ctx, conv.Conv, "b2", text("after my removal"))
	wantCode(t, err, protocol.CodeForbidden)
	ack, err := carol.Send(ctx, conv.Conv, "c2", text("still a member"))
	if err != nil {
		t.Fatalf("a member whose view went stale: %v", err)
	}
	if d := g2.counter(t, staleViews) - stale; d != 2 {
		t.Errorf("%v publishes refused as stale, want 2 (bob's and carol's)", d)
	}
	if d := g2.counter(t, viewReads) - reads; d != 2 {
		t.Errorf("%v views read, want 2", d)
	}

	// The stream's last message in the conversation is carol's: bob's
	// refused send was never stored.
	nc, err := e.app.NATS().Connect("stream-check")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	stored := schema.LayoutOf(st.CachedInfo().Config).StoredMsg(conv.Conv)
	last, err := st.GetLastMsgForSubject(ctx, stored)
	if err != nil {
		t.Fatal(err)
	}
	if last.Sequence != ack.Seq {
		t.Fatalf("last message of the conversation at %d, carol's at %d: %s", last.Sequence, ack.Seq, last.Data)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{stored}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m.Data()), `"client_id":"b2"`) {
			t.Fatalf("bob's send after his removal was stored: %s", m.Data())
		}
		if md, _ := m.Metadata(); md != nil && md.Sequence.Stream == ack.Seq {
			break
		}
	}
}
