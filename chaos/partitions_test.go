package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/testbin"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// partsCluster is three `natter nats --streams 4` nodes (the messages in
// partition streams CHAT_0 … CHAT_3, R3), two gateways and a history
// role, connected to n1 and n2 only: n3 is the node the test kills.
type partsCluster struct {
	nats     []*proc
	nc       *nats.Conn // the operator's
	sys      *nats.Conn
	js       jetstream.JetStream
	layout   schema.Layout
	gateways []*proc
}

const parts = 4

func startPartsCluster(t *testing.T, bin string) *partsCluster {
	nodes := &cluster{t: t, bin: bin, dir: t.TempDir(), natsArgs: []string{"--streams", fmt.Sprint(parts)}}
	nodes.startNATS()
	c := &partsCluster{nats: nodes.nats}
	// The roles, and the test's own connections, reach n1 and n2 only.
	urls := strings.Split(nodes.natsURL, ",")
	roleURL := strings.Join(urls[:2], ",")
	var err error
	if c.nc, err = nats.Connect(roleURL, nats.MaxReconnects(-1)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.nc.Close)
	if c.sys, err = nats.Connect(nodes.sysURL, nats.MaxReconnects(-1)); err != nil { // n1's
		t.Fatal(err)
	}
	t.Cleanup(c.sys.Close)
	c.js, _ = jetstream.New(c.nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if c.layout, err = schema.ReadLayout(ctx, c.js); err != nil || c.layout.Streams != parts {
		t.Fatalf("layout %+v, %v", c.layout, err)
	}
	hist := newProc(t, bin, "history", "/healthz", "history", "--nats-url", roleURL, "--log-level", "warn", "--data", filepath.Join(nodes.dir, "history"))
	hist.start(false)
	for i := range 2 {
		g := newProc(t, bin, fmt.Sprintf("g%d", i+1), "/healthz", "gateway", "--nats-url", roleURL, "--log-level", "warn",
			"--jwt-secret", secret, "--rate", "1000", "--rate-burst", "1000", "--data", t.TempDir())
		g.start(false)
		c.gateways = append(c.gateways, g)
	}
	hist.waitUp(60 * time.Second)
	for _, g := range c.gateways {
		g.waitUp(60 * time.Second)
	}
	return c
}

// leaderOf is the server leading stream, or its consumer when consumer is
// not "".
func (c *partsCluster) leaderOf(stream, consumer string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if consumer == "" {
		if st, err := c.js.Stream(ctx, stream); err == nil && st.CachedInfo().Cluster != nil {
			return st.CachedInfo().Cluster.Leader
		}
		return ""
	}
	if cons, err := c.js.Consumer(ctx, stream, consumer); err == nil && cons.CachedInfo().Cluster != nil {
		return cons.CachedInfo().Cluster.Leader
	}
	return ""
}

// durable reports whether consumer of stream is a durable one (a
// replicated Raft group); ephemeral watchers live on one node, and their
// clients make them again elsewhere.
func (c *partsCluster) durable(stream, consumer string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ctx, stream, consumer)
	return err == nil && cons.CachedInfo().Config.Durable != ""
}

// metaLeader is the JetStream meta leader, asked of the servers.
func (c *partsCluster) metaLeader() string {
	var jsz struct {
		Data struct {
			Meta struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		} `json:"data"`
	}
	if m, err := c.sys.Request("$SYS.REQ.SERVER.PING.JSZ", nil, 5*time.Second); err == nil {
		_ = json.Unmarshal(m.Data, &jsz)
	}
	return jsz.Data.Meta.Leader
}

// moveLeader asks api (a LEADER.STEPDOWN subject) on conn for server to
// lead, until leader says it does.
func moveLeader(t *testing.T, conn *nats.Conn, api, to string, leader func() string) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": to}})
	for deadline := time.Now().Add(60 * time.Second); leader() != to; time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s does not become leader (leader %q)", api, to, leader())
		}
		_, _ = conn.Request(api, req, 5*time.Second)
	}
}

// placeLeaders has partition stream p and its consumers led by want[p],
// and every other stream, consumer and the meta group led by a node other
// than victim: killing victim takes away only its partitions' leaders.
func (c *partsCluster) placeLeaders(t *testing.T, want []string, victim, instead string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	move := func(stream, to string) {
		moveLeader(t, c.nc, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, to, func() string { return c.leaderOf(stream, "") })
		st, err := c.js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		for name := range st.ConsumerNames(ctx).Name() {
			if c.durable(stream, name) {
				moveLeader(t, c.nc, "$JS.API.CONSUMER.LEADER.STEPDOWN."+stream+"."+name, to, func() string { return c.leaderOf(stream, name) })
			}
		}
	}
	for p, stream := range c.layout.ChatStreams() {
		move(stream, want[p])
	}
	for name := range c.js.StreamNames(ctx).Name() {
		if slices.Contains(c.layout.ChatStreams(), name) {
			continue
		}
		if c.leaderOf(name, "") == victim {
			move(name, instead)
			continue
		}
		st, err := c.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for cn := range st.ConsumerNames(ctx).Name() {
			if c.durable(name, cn) && c.leaderOf(name, cn) == victim {
				moveLeader(t, c.nc, "$JS.API.CONSUMER.LEADER.STEPDOWN."+name+"."+cn, instead, func() string { return c.leaderOf(name, cn) })
			}
		}
	}
	if c.metaLeader() == victim {
		moveLeader(t, c.sys, "$JS.API.META.LEADER.STEPDOWN", instead, c.metaLeader)
	}
}

// Partition streams' leaders spread over the three nodes; kill -9 of the
// node that leads one partition stream (and nothing else) stalls that
// partition's conversations until its election, while the other
// partitions' conversations keep sending and receiving; nothing
// acknowledged is lost.
func TestChaosPartitionLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: separate processes; not with -short")
	}
	c := startPartsCluster(t, testbin.Natter(t))
	want := []string{"n1", "n2", "n3", "n1"}
	const victim = 2
	c.placeLeaders(t, want, "n3", "n1")
	spread := map[string]int{}
	for p, name := range c.layout.ChatStreams() {
		if l := c.leaderOf(name, ""); l != want[p] {
			t.Fatalf("%s is led by %s, want %s", name, l, want[p])
		} else {
			spread[l]++
		}
	}
	if len(spread) != 3 {
		t.Fatalf("partition leaders %v do not spread over the 3 nodes", spread)
	}
	t.Logf("partition stream leaders: %v (meta leader %s)", want, c.metaLeader())

	dial := func(g int, user string) *client.Client {
		tok, err := auth.IssueHS256(secret, user, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cl, err := client.Dial(ctx, "ws://"+c.gateways[g].http+"/v1/ws", client.Options{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	// Partition p's conversation is a<p>'s with b<p>: no user is in two
	// partitions. (Every partition's fan-out updates a member's inbox
	// head with compare-and-set; one user busy in several partitions
	// makes their workers retry each other, which is another matter.)
	senders := make([]*client.Client, parts)
	readers := make([]*client.Client, parts)
	convs := make([]string, parts)
	for p := range parts {
		senders[p], readers[p] = dial(0, fmt.Sprintf("a%d", p)), dial(1, fmt.Sprintf("b%d", p))
		for i := 0; convs[p] == ""; i++ {
			if i > 100 {
				t.Fatalf("no conversation in partition %d", p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			conv, err := senders[p].CreateGroup(ctx, fmt.Sprintf("g%d-%d", p, i), fmt.Sprintf("b%d", p))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if c.layout.Partition(conv.Conv) == p {
				convs[p] = conv.Conv
			}
		}
	}

	var (
		mu     sync.Mutex
		ackAt  = make([][]time.Time, parts)
		acked  = make([][]uint64, parts)
		stop   = make(chan struct{})
		wg     sync.WaitGroup
		failed = make(chan error, parts)
	)
	for p := range parts {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A send answered unavailable (the partition electing a
				// leader for longer than the gateway waits) is retried with
				// the same client_id, as the contract tells clients to.
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				id, body := fmt.Sprintf("k%d", i), map[string]string{"text": fmt.Sprint(i)}
				ack, err := senders[p].Send(ctx, convs[p], id, body)
				for pe := (*protocol.Error)(nil); errors.As(err, &pe) && pe.Code == protocol.CodeUnavailable && ctx.Err() == nil; {
					time.Sleep(200 * time.Millisecond)
					ack, err = senders[p].Resend(ctx, convs[p], id, body)
				}
				cancel()
				if err != nil {
					failed <- fmt.Errorf("send %d in partition %d: %w", i, p, err)
					return
				}
				mu.Lock()
				ackAt[p] = append(ackAt[p], time.Now())
				acked[p] = append(acked[p], ack.Seq)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	type push struct {
		at   time.Time
		conv string
	}
	var pushes []push
	var readersDone sync.WaitGroup
	for p := range parts {
		readersDone.Go(func() {
			for {
				select {
				case <-stop:
					return
				case ev, ok := <-readers[p].Events():
					if !ok {
						return
					}
					var m protocol.Message
					if ev.Type == protocol.TypeMessage && ev.Decode(&m) == nil {
						mu.Lock()
						pushes = append(pushes, push{time.Now(), m.Conv})
						mu.Unlock()
					}
				}
			}
		})
	}
	count := func(p int) int { mu.Lock(); defer mu.Unlock(); return len(acked[p]) }
	wait := func(what string, d time.Duration, cond func() bool) {
		for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
			select {
			case err := <-failed:
				t.Fatal(err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, d)
			}
		}
	}
	wait("10 sends in every partition", time.Minute, func() bool {
		for p := range parts {
			if count(p) < 10 {
				return false
			}
		}
		return true
	})
	killedAt := time.Now()
	t.Logf("kill -9 n3, the leader of %s", c.layout.ChatStreams()[victim])
	c.nats[2].kill()
	before := count(victim)
	wait("the killed leader's partition sends again", 2*time.Minute, func() bool { return count(victim) >= before+10 })
	close(stop)
	wg.Wait()
	readersDone.Wait()
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}
	mu.Lock()
	defer mu.Unlock()
	// gap is partition p's longest wait between two acks after the kill.
	gap := func(p int) (from, to time.Time) {
		ts := ackAt[p]
		for i := 1; i < len(ts); i++ {
			if ts[i].After(killedAt) && ts[i].Sub(ts[i-1]) > to.Sub(from) {
				from, to = ts[i-1], ts[i]
			}
		}
		return from, to
	}
	from, to := gap(victim)
	stall := to.Sub(from)
	t.Logf("partition %d stalled %s across the kill; acks per partition %d %d %d %d", victim, stall.Round(time.Millisecond),
		len(acked[0]), len(acked[1]), len(acked[2]), len(acked[3]))
	if stall < time.Second {
		t.Errorf("partition %d, whose leader was killed, waited only %s: no election was needed?", victim, stall)
	}
	for p := range parts {
		if p == victim {
			continue
		}
		n, delivered := 0, 0
		for _, at := range ackAt[p] {
			if at.After(from) && at.Before(to) {
				n++
			}
		}
		for _, ps := range pushes {
			if ps.conv == convs[p] && ps.at.After(from) && ps.at.Before(to) {
				delivered++
			}
		}
		pf, pt := gap(p)
		t.Logf("partition %d: %d acks, %d deliveries to its reader while partition %d stalled; its longest wait %s", p, n, delivered, victim, pt.Sub(pf).Round(time.Millisecond))
		// While the victim stalled, the others kept going: at least
		// one send every half of the stall, acknowledged and pushed.
		if min(n, delivered) < 3 || pt.Sub(pf) > stall/2 {
			t.Errorf("partition %d: %d acks and %d deliveries during partition %d's stall of %s, longest wait %s",
				p, n, delivered, victim, stall, pt.Sub(pf))
		}
	}
	// Nothing acknowledged is lost: a sync reads every partition's acks.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for p := range parts {
		var seqs []uint64
		for after := uint64(0); ; {
			// Right after the election the partition's consumers may
			// still be electing: unavailable says retry, and so it does;
			// so does internal, which the history API answers when the
			// history consumer's info times out meanwhile (its
			// watermark), a known misclassification.
			var page *protocol.MessagesFrame
			var err error
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
				page, err = readers[p].Sync(ctx, convs[p], after, 200)
				var pe *protocol.Error
				if !errors.As(err, &pe) || pe.Code != protocol.CodeUnavailable && pe.Code != protocol.CodeInternal || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatalf("sync partition %d after %d: %v", p, after, err)
			}
			for _, m := range page.Messages {
				seqs = append(seqs, m.Seq)
				after = m.Seq
			}
			if !page.More || len(page.Messages) == 0 {
				break
			}
		}
		if !slices.Equal(seqs, acked[p]) {
			t.Fatalf("partition %d: sync %v, acked %v", p, seqs, acked[p])
		}
	}
}
