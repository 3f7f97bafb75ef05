// Package chaos kills parts of a running Natter cluster — separate
// `natter` processes on loopback — under a steady load of clients and
// checks, after every fault and again for all of them at the end, that no
// acknowledged message is lost: every one is in the history store read
// back directly (not through sync), reaches every other member once from
// the client's point of view (no message under two seqs, live pushes in
// seq order), and sync returns all of them in seq order. Each phase also
// checks that its fault took effect (a leader change, clients
// reconnecting, a fan-out pin moving, a store outage longer than the hot
// window, a rebuilt store).
package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	"github.com/natter-chat/natter/history/scyllastore"
	"github.com/natter-chat/natter/internal/testbin"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

const secret = "chaos-Hk7Qm2Zp9Vw4Rt8Ny3Lb6Xc1Fj5Gd0S"

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
	// cql, once set, is the Cassandra store the history role writes
	// instead of the embedded one in historyDir.
	cql *scyllastore.Config
	// natsArgs are more flags of every `natter nats` node.
	natsArgs []string
}

// startNATS starts the three `natter nats` nodes n1..n3, sets c.natsURL
// and c.sysURL, and waits for the schema (R3).
func (c *cluster) startNATS() {
	t, bin := c.t, c.bin
	authFile := filepath.Join(c.dir, "nats-auth.json")
	clients := make([]string, 3)
	routes := make([]string, 3)
	for i := range 3 {
		clients[i] = testbin.FreeAddr(t)
		routes[i] = "nats-route://" + testbin.FreeAddr(t)
	}
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		args := []string{"nats",
			"--name", name, "--listen", clients[i], "--cluster-name", "chaos",
			"--cluster-listen", strings.TrimPrefix(routes[i], "nats-route://"),
			"--routes", strings.Join(routes, ","), "--data", filepath.Join(c.dir, name),
			"--auth-file", authFile, "--trim-interval", "1s"}
		c.nats = append(c.nats, newProc(t, bin, name, "/readyz", append(args, c.natsArgs...)...))
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
	// The natter nats nodes ensure the schema (R3) once the cluster has a
	// leader; roles never create it and wait for it. On a loaded machine
	// the R3 streams and buckets can take a minute: wait for them here so
	// each role's own start is timed on its own.
	schemaDeadline := time.Now().Add(3 * time.Minute)
	for !slices.ContainsFunc(c.nats, func(n *proc) bool { return strings.Contains(n.logs.String(), `"msg":"schema ensured"`) }) {
		if time.Now().After(schemaDeadline) {
			t.Fatal("no natter nats node ensured the schema within 3 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// historyData is the history role's --data; its embedded store is the
// "history" directory in it.
func (c *cluster) historyData() string { return filepath.Join(c.dir, "history") }

func startCluster(t *testing.T, bin string) *cluster {
	c := &cluster{t: t, bin: bin, dir: t.TempDir()}
	c.startNATS()
	role := func(name, kind string, args ...string) *proc {
		return newProc(t, bin, name, "/healthz", append([]string{kind, "--nats-url", c.natsURL, "--log-level", "warn"}, args...)...)
	}
	// Gateways log at info: their fan-out worker names the pin it holds,
	// which is how the fan-out phase knows whom to kill.
	gateway := func(name string) *proc {
		return newProc(t, bin, name, "/healthz", "gateway", "--nats-url", c.natsURL, "--log-level", "info",
			"--jwt-secret", secret, "--heartbeat", "2s", "--rate", "1000", "--rate-burst", "1000", "--data", t.TempDir())
	}
	c.history = role("history", "history", "--data", c.historyData())
	c.presence = role("presence", "presence")
	for i := range 2 {
		c.gateways = append(c.gateways, gateway(fmt.Sprintf("g%d", i+1)))
	}
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
	at                     time.Time // when the ack came
}

// load is the clients and what they saw.
type load struct {
	t     *testing.T
	users []string // the senders
	// watchers are members of the group that only read, each on one
	// gateway alone: watchers[g] are on c.gateways[g].
	watchers [][]string
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

	// liveMax is the highest seq pushed live per user and conversation;
	// a new seq pushed below it arrived out of order.
	liveMax map[string]map[string]uint64
	// seqOf is the seq clients saw a (conv, sender/client_id) under; one
	// seen under a second seq is a duplicate visible to clients (Session
	// already drops a (conv, seq) seen before).
	seqOf      map[string]map[string]uint64
	outOfOrder map[int][]string // phase -> problems
	dups       map[int][]string // phase -> problems
}

func newLoad(t *testing.T, c *cluster, n int) *load {
	l := &load{t: t, sessions: map[string]*client.Session{}, convs: map[string][]string{}, own: map[string][]string{},
		acked: map[string]*sent{}, delivered: map[string]map[string]map[uint64]int{},
		retried: map[int]map[string]int{}, stall: map[int]time.Duration{},
		liveMax: map[string]map[string]uint64{}, seqOf: map[string]map[string]uint64{},
		outOfOrder: map[int][]string{}, dups: map[int][]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	connect := func(u string, urls []string) {
		l.delivered[u] = map[string]map[uint64]int{}
		l.liveMax[u] = map[string]uint64{}
		tok, err := auth.IssueHS256(secret, u, 2*time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s, err := client.NewSession(ctx, client.SessionOptions{
			URLs:        urls,
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
	for i := range n {
		u := fmt.Sprintf("u%d", i)
		l.users = append(l.users, u)
		connect(u, c.wsURLs(i%2)) // even users on g1, odd on g2
	}
	// Watchers only read the group, each through one gateway alone, so
	// those on the gateway that lives stay connected when a fault takes
	// the other down while the senders have all moved there.
	l.watchers = make([][]string, len(c.gateways))
	for g := range c.gateways {
		for i := range 2 {
			w := fmt.Sprintf("w%d_%d", g+1, i)
			l.watchers[g] = append(l.watchers[g], w)
			connect(w, c.wsURLs(g)[:1])
		}
	}
	watchers := slices.Concat(l.watchers...)
	// One group of everyone, and a direct conversation per pair (u0,u1), (u2,u3), ...
	owner, _ := l.sessions[l.users[0]].Client(ctx)
	g, err := owner.CreateGroup(ctx, "chaos", slices.Concat(l.users[1:], watchers)...)
	if err != nil {
		t.Fatal(err)
	}
	l.convs[g.Conv] = append(slices.Clone(l.users), watchers...)
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
	if live && byConv[m.Seq] == 1 {
		if top := l.liveMax[user][m.Conv]; m.Seq < top {
			l.outOfOrder[l.phase] = append(l.outOfOrder[l.phase], fmt.Sprintf("%s got %s seq %d live after seq %d", user, m.Conv, m.Seq, top))
		}
		l.liveMax[user][m.Conv] = max(l.liveMax[user][m.Conv], m.Seq)
	}
	if m.Kind != "" {
		return
	}
	ids := l.seqOf[m.Conv]
	if ids == nil {
		ids = map[string]uint64{}
		l.seqOf[m.Conv] = ids
	}
	key := m.Sender + "/" + m.ClientID
	if prev, ok := ids[key]; ok && prev != m.Seq {
		l.dups[l.phase] = append(l.dups[l.phase], fmt.Sprintf("%s saw %s %s as seq %d and seq %d", user, m.Conv, key, prev, m.Seq))
	}
	ids[key] = m.Seq
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
					l.acked[conv+"/"+id] = &sent{conv: conv, sender: u, clientID: id, seq: ack.Seq, phase: l.phase, at: time.Now()}
				}
				l.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// connects sums the connects of users' sessions.
func (l *load) connects(users []string) int {
	n := 0
	for _, u := range users {
		n += l.sessions[u].Connects()
	}
	return n
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

// verifySynced syncs every conversation from the start as a member and
// checks the acked messages of phase are there, in ascending seq order,
// once each, and that every message returned was acknowledged.
func (l *load) verifySynced(ctx context.Context, phase int) (stored int, problems []string) {
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
	fault                    string
	acked, stored, delivered int
	lost, dups, outOfOrder   int
	viaSync, reconnects      int
	effect                   string // what shows the fault took effect
	elapsed                  time.Duration
}

// runPhase runs load for before, applies fault, keeps the load for after,
// then waits for delivery and checks everything acked in the phase: in
// the history store read directly, delivered to every other member, never
// under two seqs, pushed live in seq order, returned by sync. fault
// records in r.effect what shows it took effect (TestChaos fails a phase
// without), or fails the test.
func (l *load) runPhase(t *testing.T, c *cluster, js jetstream.JetStream, name string, before, after time.Duration, fault func(r *row)) row {
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
	r := row{fault: name}
	time.Sleep(before)
	if fault != nil {
		fault(&r)
	}
	time.Sleep(after)
	cancel()
	<-done

	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		r.acked, r.delivered, _, missing = l.missing(phase)
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, m := range missing {
		t.Errorf("%s: not delivered: %s", name, m)
	}
	// Each check gets its own time, so that one failing slowly (sync
	// retried for lack of messages) leaves the others theirs.
	sctx, scancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer scancel()
	var problems []string
	for {
		_, problems = l.verifySynced(sctx, phase)
		if len(problems) == 0 || sctx.Err() != nil {
			break
		}
		time.Sleep(time.Second) // e.g. the history API is still coming back
	}
	for _, p := range problems {
		t.Errorf("%s: %s", name, p)
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer hcancel()
	if !historyCaughtUp(hctx, js) {
		t.Errorf("%s: the history consumer did not catch up: the store lacks acked messages", name)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	defer rcancel()
	inPhase := func(p int) bool { return p == phase }
	r.stored, problems = l.checkStore(c.readStore(t, rctx, l.convIDs(), true), func(s *sent) bool { return inPhase(s.phase) }, inPhase)
	for _, p := range problems {
		t.Errorf("%s: history store read directly: %s", name, p)
	}
	r.lost = r.acked - min(r.delivered, r.stored)
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
	r.dups, r.outOfOrder = len(l.dups[phase]), len(l.outOfOrder[phase])
	for _, d := range l.dups[phase] {
		t.Errorf("%s: duplicate visible to a client: %s", name, d)
	}
	for _, o := range l.outOfOrder[phase] {
		t.Errorf("%s: live push out of order: %s", name, o)
	}
	l.mu.Unlock()
	if r.lost > 0 {
		t.Errorf("%s: %d acked messages lost", name, r.lost)
	}
	r.elapsed = time.Since(began)
	return r
}

// wantReconnects records the clients' reconnects as the effect of a
// gateway's death, or fails the test when there were none.
func wantReconnects(t *testing.T, r row) row {
	t.Helper()
	if r.reconnects == 0 {
		t.Errorf("%s: no client reconnected", r.fault)
	}
	effect := fmt.Sprintf("%d clients reconnected", r.reconnects)
	if r.effect != "" {
		effect += "; " + r.effect
	}
	r.effect = effect
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
	return streamLeaderOf(t, js, schema.StreamChat)
}

// streamLeaderOf names the node leading stream.
func streamLeaderOf(t *testing.T, js jetstream.JetStream, stream string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		st, err := js.Stream(ctx, stream)
		if err == nil && st.CachedInfo().Cluster != nil && st.CachedInfo().Cluster.Leader != "" {
			return st.CachedInfo().Cluster.Leader
		}
		if ctx.Err() != nil {
			t.Fatalf("no leader for stream %s: %v", stream, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func printTable(t *testing.T, rows []row) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-40s %6s %6s %9s %4s %4s %5s %8s %10s %7s  %s\n", "fault", "acked", "stored", "delivered", "lost", "dups", "order", "via sync", "reconnects", "seconds", "took effect")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-40s %6d %6d %9d %4d %4d %5d %8d %10d %7.1f  %s\n", r.fault, r.acked, r.stored, r.delivered, r.lost,
			r.dups, r.outOfOrder, r.viaSync, r.reconnects, r.elapsed.Seconds(), r.effect)
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

	rows = append(rows, l.runPhase(t, c, js, "none (baseline)", 2*time.Second, 0, nil))

	rows = append(rows, l.runPhase(t, c, js, "kill -9 NATS stream leader", 3*time.Second, 8*time.Second, func(r *row) {
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
		r.effect = leaderChanged(t, js, leader)
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

	rows = append(rows, wantReconnects(t, l.runPhase(t, c, js, "kill -9 gateway g1", 3*time.Second, 6*time.Second, func(*row) {
		c.gateways[0].kill()
		go func() {
			time.Sleep(3 * time.Second)
			c.gateways[0].start(false)
		}()
	})))
	c.gateways[0].waitUp(60 * time.Second)

	rows = append(rows, l.runPhase(t, c, js, "kill -9 history, restart after 3 s", 3*time.Second, 3*time.Second, func(r *row) {
		c.history.kill()
		time.Sleep(3 * time.Second)
		pending := consumerPending(t, js, schema.ConsumerHistory)
		c.history.start(false)
		r.effect = fmt.Sprintf("%d messages waited for the store", pending)
		if pending == 0 {
			t.Errorf("history killed: no message waited for the store")
		}
	}))
	c.history.waitUp(60 * time.Second)

	watching := make([]int, len(c.gateways))
	for g := range c.gateways {
		watching[g] = l.connects(l.watchers[g])
	}
	killed := -1
	rows = append(rows, wantReconnects(t, l.runPhase(t, c, js, "kill -9 the pinned fan-out worker", 3*time.Second, 6*time.Second, func(r *row) {
		killed = killFanout(t, c, js, r)
	})))
	// The phase's checks include the watchers: every message reached
	// them, in order, while those on the gateway that lived stayed.
	for g := range c.gateways {
		if n := l.connects(l.watchers[g]); g != killed && n != watching[g] {
			t.Errorf("kill -9 the pinned fan-out worker: the watchers on %s, which lived, reconnected (%d connects, %d before)", c.gateways[g].name, n, watching[g])
		}
	}
	for _, g := range c.gateways {
		g.waitUp(60 * time.Second)
	}

	rows = append(rows, l.runPhase(t, c, js, "history store wiped, rebuilt", 3*time.Second, 3*time.Second, func(r *row) {
		wipeAndRebuild(t, c, l, r)
	}))
	c.history.waitUp(60 * time.Second)

	// The window is shortened for this phase only: a wiped store can be
	// rebuilt only from what the stream still holds.
	t.Run("store down longer than the hot window", func(t *testing.T) {
		// Before the retention trimmer CHAT deleted by age (MaxAge), and
		// this phase lost what the store had not copied: 916 of 1402 acked
		// messages missing from the store read directly (docs/benchmarks.md).
		rows = append(rows, l.runPhase(t, c, js, "history down 20 s, hot window 5 s", 2*time.Second, 3*time.Second, func(r *row) {
			storeDownPastWindow(t, c, js, l, r, 5*time.Second, 20*time.Second)
		}))
		c.history.waitUp(60 * time.Second)
	})

	// The last phase runs the history service on Cassandra.
	hosts, cassErr := cass.result()
	cqlPhase := -1
	if cassErr == nil {
		c.history.stop()
		cql := newProc(t, bin, "history-cql", "/healthz", "history", "--nats-url", c.natsURL,
			"--log-level", "warn", "--data", filepath.Join(c.dir, "history-cql"), "--cql", hosts, "--keyspace", "natter_chaos")
		cql.start(true)
		c.cql = &scyllastore.Config{Hosts: strings.Split(hosts, ","), Keyspace: "natter_chaos"}
		cqlPhase = l.currentPhase() + 1
		rows = append(rows, l.runPhase(t, c, js, "Cassandra stopped 30 s (history --cql)", 3*time.Second, 3*time.Second, func(r *row) {
			cass.stop(t)
			time.Sleep(30 * time.Second)
			pending := consumerPending(t, js, schema.ConsumerHistory)
			cass.restart(t)
			r.effect = fmt.Sprintf("%d messages waited for the store", pending)
			if pending == 0 {
				t.Errorf("Cassandra stopped: no message waited for the store")
			}
		}))
	}
	for _, r := range rows[1:] {
		if r.effect == "" {
			t.Errorf("%s: nothing shows the fault took effect", r.fault)
		}
	}
	rows = append(rows, l.checkAll(t, c, cqlPhase))
	if cassErr != nil {
		cass.wait(t) // fails under CI, skips loudly elsewhere
	}
}
