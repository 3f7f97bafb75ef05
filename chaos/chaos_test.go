// Package chaos kills parts of a running Natter cluster — separate
// `natter` processes on loopback — under a steady load of clients and
// checks that no acknowledged message is lost: every one reaches every
// other member exactly once from the client's point of view, and sync
// returns all of them in seq order.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

const secret = "chaos-test-secret"

// cluster is the processes of one Natter deployment.
type cluster struct {
	t        *testing.T
	bin      string
	dir      string
	nats     []*proc
	natsURL  string // operator URLs of every node, comma separated
	sysURL   string
	gateways []*proc
	history  *proc
	presence *proc
}

func startCluster(t *testing.T, bin string) *cluster {
	c := &cluster{t: t, bin: bin, dir: t.TempDir()}
	authFile := filepath.Join(c.dir, "nats-auth.json")
	clients := make([]string, 3)
	routes := make([]string, 3)
	for i := range 3 {
		clients[i] = testbin.FreeAddr(t)
		routes[i] = "nats-route://" + testbin.FreeAddr(t)
	}
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		c.nats = append(c.nats, newProc(t, bin, name, "/readyz", "nats",
			"--name", name, "--listen", clients[i], "--cluster-name", "chaos",
			"--cluster-listen", strings.TrimPrefix(routes[i], "nats-route://"),
			"--routes", strings.Join(routes, ","), "--data", filepath.Join(c.dir, name),
			"--auth-file", authFile))
	}
	// The first node writes the shared credentials file; then the others.
	c.nats[0].start(false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(authFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("n1 never wrote the credentials file")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.nats[1].start(false)
	c.nats[2].start(false)
	for _, n := range c.nats {
		n.waitUp(60 * time.Second)
	}
	a := readAuth(t, authFile)
	var urls []string
	for _, addr := range clients {
		urls = append(urls, "nats://operator:"+a.Operator+"@"+addr)
	}
	c.natsURL = strings.Join(urls, ",")
	c.sysURL = "nats://sys:" + a.Sys + "@" + clients[0]

	role := func(name, kind string, args ...string) *proc {
		return newProc(t, bin, name, "/healthz", append([]string{kind, "--nats-url", c.natsURL, "--log-level", "warn"}, args...)...)
	}
	c.history = role("history", "history", "--data", filepath.Join(c.dir, "history"))
	c.presence = role("presence", "presence")
	for i := range 2 {
		c.gateways = append(c.gateways, role(fmt.Sprintf("g%d", i+1), "gateway", "--jwt-secret", secret, "--heartbeat", "2s", "--rate", "1000", "--rate-burst", "1000"))
	}
	// The history role first: it ensures the schema, R3 since its URL list
	// names three servers (schema.AutoReplicas); the others find it.
	c.history.start(true)
	c.presence.start(false)
	for _, g := range c.gateways {
		g.start(false)
	}
	c.presence.waitUp(60 * time.Second)
	for _, g := range c.gateways {
		g.waitUp(60 * time.Second)
	}
	return c
}

func (c *cluster) wsURLs(first int) []string {
	var urls []string
	for i := range c.gateways {
		g := c.gateways[(first+i)%len(c.gateways)]
		urls = append(urls, "ws://"+g.http+"/v1/ws")
	}
	return urls
}

// js connects to the cluster as the operator.
func (c *cluster) js(t *testing.T) jetstream.JetStream {
	nc, err := nats.Connect(c.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// node returns the NATS process named name.
func (c *cluster) node(name string) *proc {
	for _, n := range c.nats {
		if n.name == name {
			return n
		}
	}
	return nil
}

// sent is an acknowledged message.
type sent struct {
	conv, sender, clientID string
	seq                    uint64
	phase                  int
}

// load is the clients and what they saw.
type load struct {
	t        *testing.T
	users    []string
	sessions map[string]*client.Session
	convs    map[string][]string // conv -> members
	own      map[string][]string // user -> conversations it sends to

	mu        sync.Mutex
	acked     map[string]*sent                     // conv/clientID -> ack
	delivered map[string]map[string]map[uint64]int // user -> conv -> seq -> times
	unacked   []string                             // sends given up on
	phase     int
	viaSync   int // others' messages first seen through sync, not pushed
	// retried counts, per phase, the error codes of send attempts the
	// sessions retried ("" for a dropped connection); stall is the
	// longest a send of the phase waited for its ack.
	retried map[int]map[string]int
	stall   map[int]time.Duration
}

func newLoad(t *testing.T, c *cluster, n int) *load {
	l := &load{t: t, sessions: map[string]*client.Session{}, convs: map[string][]string{}, own: map[string][]string{},
		acked: map[string]*sent{}, delivered: map[string]map[string]map[uint64]int{},
		retried: map[int]map[string]int{}, stall: map[int]time.Duration{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		u := fmt.Sprintf("u%d", i)
		l.users = append(l.users, u)
		l.delivered[u] = map[string]map[uint64]int{}
		tok, err := auth.IssueHS256(secret, u, 2*time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s, err := client.NewSession(ctx, client.SessionOptions{
			URLs:        c.wsURLs(i % 2), // even users on g1, odd on g2
			Options:     client.Options{Token: tok},
			OnMessage:   func(m *protocol.Message, live bool) { l.record(u, m, live) },
			ResyncEvery: 2 * time.Second,
			OnSendRetry: func(_, _ string, err error) { l.retry(err) },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		l.sessions[u] = s
	}
	// One group of everyone, and a direct conversation per pair (u0,u1), (u2,u3), ...
	owner, _ := l.sessions[l.users[0]].Client(ctx)
	g, err := owner.CreateGroup(ctx, "chaos", l.users[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	l.convs[g.Conv] = l.users
	for _, u := range l.users {
		l.own[u] = append(l.own[u], g.Conv)
	}
	for i := 0; i+1 < n; i += 2 {
		a, b := l.users[i], l.users[i+1]
		cl, _ := l.sessions[a].Client(ctx)
		d, err := cl.CreateDirect(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		l.convs[d.Conv] = []string{a, b}
		l.own[a] = append(l.own[a], d.Conv)
		l.own[b] = append(l.own[b], d.Conv)
	}
	return l
}

// retry counts a retried send attempt in the current phase.
func (l *load) retry(err error) {
	code := ""
	if pe, ok := errors.AsType[*protocol.Error](err); ok {
		code = pe.Code
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retried[l.phase] == nil {
		l.retried[l.phase] = map[string]int{}
	}
	l.retried[l.phase][code]++
}

func (l *load) record(user string, m *protocol.Message, live bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !live && m.Sender != user {
		l.viaSync++
	}
	byConv := l.delivered[user][m.Conv]
	if byConv == nil {
		byConv = map[uint64]int{}
		l.delivered[user][m.Conv] = byConv
	}
	byConv[m.Seq]++
}

// run sends from every user every interval until ctx ends; each send in
// flight then finishes (retrying with its client_id) before run returns.
func (l *load) run(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	for _, u := range l.users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := l.sessions[u]
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				conv := l.own[u][n%len(l.own[u])]
				id := fmt.Sprintf("%s-p%d-%d", u, l.currentPhase(), n)
				// The send may outlive ctx: a message in flight is retried
				// until acknowledged, so "acked" is exact.
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				began := time.Now()
				ack, err := s.Send(sctx, conv, id, map[string]string{"text": id})
				took := time.Since(began)
				cancel()
				l.mu.Lock()
				l.stall[l.phase] = max(l.stall[l.phase], took)
				if err != nil {
					l.unacked = append(l.unacked, conv+"/"+id+": "+err.Error())
				} else {
					l.acked[conv+"/"+id] = &sent{conv: conv, sender: u, clientID: id, seq: ack.Seq, phase: l.phase}
				}
				l.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func (l *load) currentPhase() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phase
}

// missing counts, for the acked messages of phase, the (message, member)
// pairs not delivered; the sender's own session is not a recipient (its
// connection gets the ack instead).
func (l *load) missing(phase int) (acked, delivered, dupDeliveries int, missing []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.acked {
		if s.phase != phase {
			continue
		}
		acked++
		all := true
		for _, m := range l.convs[s.conv] {
			if m == s.sender {
				continue
			}
			switch n := l.delivered[m][s.conv][s.seq]; {
			case n == 0:
				all = false
				missing = append(missing, fmt.Sprintf("%s seq %d (%s) to %s", s.conv, s.seq, s.clientID, m))
			case n > 1:
				dupDeliveries++
			}
		}
		if all {
			delivered++
		}
	}
	return
}

// verifyStored syncs every conversation from the start as a member and
// checks the acked messages of phase are there, in ascending seq order,
// once each, and that every stored message was acknowledged.
func (l *load) verifyStored(ctx context.Context, phase int) (stored int, problems []string) {
	bySeq := map[string]map[uint64]*sent{}
	l.mu.Lock()
	for _, s := range l.acked {
		if bySeq[s.conv] == nil {
			bySeq[s.conv] = map[uint64]*sent{}
		}
		bySeq[s.conv][s.seq] = s
	}
	l.mu.Unlock()
	for conv, members := range l.convs {
		c, err := l.sessions[members[0]].Client(ctx)
		if err != nil {
			return stored, append(problems, "no connection for sync: "+err.Error())
		}
		var after uint64
		seen := map[string]uint64{}
		for {
			page, err := c.Sync(ctx, conv, after, 200)
			if err != nil {
				return stored, append(problems, fmt.Sprintf("sync %s after %d: %v", conv, after, err))
			}
			for _, m := range page.Messages {
				if m.Seq <= after {
					problems = append(problems, fmt.Sprintf("sync %s: seq %d after %d (out of order)", conv, m.Seq, after))
				}
				after = m.Seq
				key := m.Sender + "/" + m.ClientID
				if prev, dup := seen[key]; dup {
					problems = append(problems, fmt.Sprintf("sync %s: %s stored twice (seq %d and %d)", conv, key, prev, m.Seq))
				}
				seen[key] = m.Seq
				s := bySeq[conv][m.Seq]
				switch {
				case s == nil:
					problems = append(problems, fmt.Sprintf("sync %s: seq %d (%s) stored but never acknowledged", conv, m.Seq, key))
				case s.clientID != m.ClientID:
					problems = append(problems, fmt.Sprintf("sync %s: seq %d is %s, acked as %s", conv, m.Seq, m.ClientID, s.clientID))
				case s.phase == phase:
					stored++
				}
			}
			if !page.More || len(page.Messages) == 0 {
				break
			}
		}
		for seq, s := range bySeq[conv] {
			if s.phase == phase && seen[s.sender+"/"+s.clientID] != seq {
				problems = append(problems, fmt.Sprintf("sync %s: acked seq %d (%s) missing", conv, seq, s.clientID))
			}
		}
	}
	return stored, problems
}

// row is one line of the chaos table.
type row struct {
	fault                              string
	acked, delivered, stored, lost     int
	dupDeliveries, reconnects, viaSync int
	historyCaughtUp                    bool
	elapsed                            time.Duration
}

// phase runs load for before, applies fault, keeps the load for after,
// then waits for delivery and checks everything acked in the phase.
func (l *load) runPhase(t *testing.T, c *cluster, js jetstream.JetStream, name string, before, after time.Duration, fault func()) row {
	t.Helper()
	began := time.Now()
	l.mu.Lock()
	l.phase++
	phase := l.phase
	l.mu.Unlock()
	reconnects := 0
	for _, s := range l.sessions {
		reconnects -= s.Connects()
	}
	l.mu.Lock()
	viaSync := -l.viaSync
	l.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx, 100*time.Millisecond); close(done) }()
	time.Sleep(before)
	fault()
	time.Sleep(after)
	cancel()
	<-done

	r := row{fault: name}
	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		r.acked, r.delivered, r.dupDeliveries, missing = l.missing(phase)
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, m := range missing {
		t.Errorf("%s: not delivered: %s", name, m)
	}
	vctx, vcancel := context.WithTimeout(context.Background(), time.Minute)
	defer vcancel()
	var problems []string
	for {
		r.stored, problems = l.verifyStored(vctx, phase)
		if len(problems) == 0 || vctx.Err() != nil {
			break
		}
		time.Sleep(time.Second) // e.g. the history API is still coming back
	}
	for _, p := range problems {
		t.Errorf("%s: %s", name, p)
	}
	r.lost = r.acked - min(r.delivered, r.stored)
	r.historyCaughtUp = historyCaughtUp(vctx, js)
	if !r.historyCaughtUp {
		t.Errorf("%s: the history consumer did not catch up: the store lacks acked messages", name)
	}
	for _, s := range l.sessions {
		reconnects += s.Connects()
	}
	r.reconnects = reconnects
	l.mu.Lock()
	r.viaSync = viaSync + l.viaSync
	for _, u := range l.unacked {
		t.Errorf("%s: send never acknowledged: %s", name, u)
	}
	l.unacked = nil
	l.mu.Unlock()
	r.elapsed = time.Since(began)
	return r
}

// historyCaughtUp waits until the history writer has acked everything:
// the store holds every message of the stream.
func historyCaughtUp(ctx context.Context, js jetstream.JetStream) bool {
	for {
		cons, err := js.Consumer(ctx, schema.StreamChat, schema.ConsumerHistory)
		if err == nil {
			if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func streamLeader(t *testing.T, js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		st, err := js.Stream(ctx, schema.StreamChat)
		if err == nil && st.CachedInfo().Cluster != nil && st.CachedInfo().Cluster.Leader != "" {
			return st.CachedInfo().Cluster.Leader
		}
		if ctx.Err() != nil {
			t.Fatalf("no leader for stream %s: %v", schema.StreamChat, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func printTable(t *testing.T, rows []row) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-40s %6s %9s %6s %4s %4s %8s %10s %7s %7s\n", "fault", "acked", "delivered", "stored", "lost", "dups", "via sync", "reconnects", "history", "seconds")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-40s %6d %9d %6d %4d %4d %8d %10d %7v %7.1f\n", r.fault, r.acked, r.delivered, r.stored, r.lost,
			r.dupDeliveries, r.viaSync, r.reconnects, r.historyCaughtUp, r.elapsed.Seconds())
	}
	t.Log(b.String())
	fmt.Print(b.String())
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: separate processes and faults take minutes; not with -short")
	}
	bin := testbin.Natter(t)
	// Cassandra takes the longest to start: it starts while the first
	// faults run.
	cass := startCassandra(t)

	c := startCluster(t, bin)
	js := c.js(t)
	l := newLoad(t, c, 6)
	var rows []row
	defer func() { printTable(t, rows) }()

	rows = append(rows, l.runPhase(t, c, js, "none (baseline)", 2*time.Second, 0, func() {}))

	rows = append(rows, l.runPhase(t, c, js, "kill -9 NATS stream leader", 3*time.Second, 8*time.Second, func() {
		leader := streamLeader(t, js)
		n := c.node(leader)
		if n == nil {
			t.Fatalf("stream leader %q is no node of ours", leader)
		}
		t.Logf("killing the CHAT stream leader %s", leader)
		n.kill()
		go func() {
			time.Sleep(3 * time.Second)
			n.start(false)
		}()
	}))
	// The gateways retry the publish across the election: a send may
	// stall, but no attempt is answered internal.
	l.mu.Lock()
	leaderKill := rows[len(rows)-1]
	t.Logf("%s: longest wait for an ack %s; retried attempts by code %v", leaderKill.fault, l.stall[l.phase].Round(time.Millisecond), l.retried[l.phase])
	if n := l.retried[l.phase][protocol.CodeInternal]; n > 0 {
		t.Errorf("%s: %d send attempts answered internal", leaderKill.fault, n)
	}
	l.mu.Unlock()
	for _, n := range c.nats {
		n.waitUp(60 * time.Second)
	}

	rows = append(rows, l.runPhase(t, c, js, "kill -9 gateway g1", 3*time.Second, 6*time.Second, func() {
		c.gateways[0].kill()
		go func() {
			time.Sleep(3 * time.Second)
			c.gateways[0].start(false)
		}()
	}))
	c.gateways[0].waitUp(60 * time.Second)

	rows = append(rows, l.runPhase(t, c, js, "kill -9 history, restart after 3 s", 3*time.Second, 6*time.Second, func() {
		c.history.kill()
		go func() {
			time.Sleep(3 * time.Second)
			c.history.start(false)
		}()
	}))
	c.history.waitUp(60 * time.Second)

	// Fault 4 runs the history service on Cassandra.
	hosts, ok := cass.wait(t)
	if !ok {
		return
	}
	c.history.stop()
	cql := newProc(t, bin, "history-cql", "/healthz", "history", "--nats-url", c.natsURL,
		"--log-level", "warn", "--data", filepath.Join(c.dir, "history-cql"), "--cql", hosts, "--keyspace", "natter_chaos")
	cql.start(true)
	rows = append(rows, l.runPhase(t, c, js, "Cassandra stopped 30 s (history --cql)", 3*time.Second, 3*time.Second, func() {
		cass.stop(t)
		time.Sleep(30 * time.Second)
		cass.restart(t)
	}))
	for _, r := range rows {
		if r.lost > 0 {
			t.Errorf("%s: %d acked messages lost", r.fault, r.lost)
		}
	}
}
