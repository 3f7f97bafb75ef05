package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// linkProxy stands for the network between two regions: every NATS
// gateway connection into one node goes through it (the node advertises
// the proxy's address as its gateway address). It reads the dialing
// server's CONNECT to learn which cluster dials (its "gateway" field);
// while the link is cut, connections of the cut cluster are closed at
// once (as a severed link resets them) and those open are closed; other
// clusters' (the witness's) pass. restore lets them through again.
type linkProxy struct {
	ln      net.Listener
	target  string
	cutFrom string // the cluster whose connections a cut closes

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]string // both ends of each connection -> the dialing cluster
}

func newLinkProxy(t *testing.T, listen, target, cutFrom string) *linkProxy {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{ln: ln, target: target, cutFrom: cutFrom, conns: map[net.Conn]string{}}
	t.Cleanup(func() { _ = ln.Close(); p.closeAll() })
	go p.accept()
	return p
}

func (p *linkProxy) addr() string { return p.ln.Addr().String() }

func (p *linkProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(in)
	}
}

func (p *linkProxy) serve(in net.Conn) {
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = in.Close()
		return
	}
	p.mu.Lock()
	p.conns[in], p.conns[out] = "", ""
	p.mu.Unlock()
	done := func() {
		_ = in.Close()
		_ = out.Close()
		p.mu.Lock()
		delete(p.conns, in)
		delete(p.conns, out)
		p.mu.Unlock()
	}
	go func() { _, _ = io.Copy(in, out); done() }() // the server's INFO first
	_ = in.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(in)
	line, err := r.ReadString('\n')
	_ = in.SetReadDeadline(time.Time{})
	if err != nil {
		done()
		return
	}
	var connect struct {
		Gateway string `json:"gateway"`
	}
	_ = json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(line), "CONNECT ")), &connect)
	p.mu.Lock()
	if p.cut && connect.Gateway == p.cutFrom {
		p.mu.Unlock()
		done()
		return
	}
	p.conns[in], p.conns[out] = connect.Gateway, connect.Gateway
	p.mu.Unlock()
	if _, err := io.WriteString(out, line); err != nil {
		done()
		return
	}
	_, _ = io.Copy(out, r)
	done()
}

// sever cuts (cut true) or restores the link.
func (p *linkProxy) sever(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c, from := range p.conns {
			if from == p.cutFrom {
				_ = c.Close()
			}
		}
	}
}

func (p *linkProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// open is the number of connection ends of the cut cluster through the
// proxy now.
func (p *linkProxy) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, from := range p.conns {
		if from == p.cutFrom {
			n++
		}
	}
	return n
}

// supercluster is two regions of three `natter nats` nodes each, "east"
// and "west", joined by NATS gateways through linkProxies. The schema's
// buckets live in east, message stream CHAT_0 in east and CHAT_1 in west;
// each region has its own gateway role, connected to its own nodes only,
// and east a history role.
type supercluster struct {
	t       *testing.T
	nodes   map[string][]*proc // region -> its nodes
	proxies []*linkProxy
	urls    map[string]string // region -> operator URLs of its nodes
	sysURL  map[string]string // region -> the system account's URL of its first node
	gw      map[string]*proc  // region -> its natter gateway
	layout  schema.Layout
	js      map[string]jetstream.JetStream // region -> the operator's, connected to that region only
	sys     map[string]*nats.Conn
}

var regions = []string{"east", "west"}

// witness is the third region, of one JetStream node that holds no
// stream: the tie-break of the JetStream meta group (seven peers), so
// that the side of a cut with the meta leader keeps a quorum.
const witness = "witness"

func startSupercluster(t *testing.T, bin string) *supercluster {
	dir := t.TempDir()
	authFile := filepath.Join(dir, "nats-auth.json")
	type addrs struct{ client, route, gw string }
	a := map[string][]addrs{}
	gwURLs := map[string][]string{}
	sc := &supercluster{t: t, nodes: map[string][]*proc{}, urls: map[string]string{}, sysURL: map[string]string{},
		gw: map[string]*proc{}, js: map[string]jetstream.JetStream{}, sys: map[string]*nats.Conn{}}
	advertise := map[string]string{}
	all := append(slices.Clone(regions), witness)
	// Addresses picked now and listened on later: no two alike.
	taken := map[string]bool{}
	free := func() string {
		for {
			if ad := testbin.FreeAddr(t); !taken[ad] {
				taken[ad] = true
				return ad
			}
		}
	}
	for _, r := range all {
		n := 3
		if r == witness {
			n = 1
		}
		for i := range n {
			ad := addrs{free(), free(), free()}
			a[r] = append(a[r], ad)
			name := nodeName(r, i)
			advertise[name] = ad.gw
			if r != witness {
				// Gateway connections from the other main region go
				// through this node's proxy; the witness's pass.
				other := regions[1-slices.Index(regions, r)]
				p := newLinkProxy(t, free(), ad.gw, other)
				sc.proxies = append(sc.proxies, p)
				advertise[name] = p.addr()
			}
			gwURLs[r] = append(gwURLs[r], "nats://"+advertise[name])
		}
	}
	for _, r := range all {
		var routes []string
		for _, ad := range a[r] {
			routes = append(routes, "nats-route://"+ad.route)
		}
		for i, ad := range a[r] {
			name := nodeName(r, i)
			args := []string{"nats", "--name", name, "--listen", ad.client, "--cluster-name", r,
				"--cluster-listen", ad.route, "--routes", strings.Join(routes, ","),
				"--data", filepath.Join(dir, name), "--auth-file", authFile, "--trim-interval", "1s",
				"--replicas", "3", "--streams", "2", "--home-region", "east", "--stream-regions", "east,west",
				"--gateway-listen", ad.gw, "--gateway-advertise", advertise[name]}
			for _, gr := range all {
				args = append(args, "--gateway", gr+"="+strings.Join(gwURLs[gr], ","))
			}
			sc.nodes[r] = append(sc.nodes[r], newProc(t, bin, name, "/readyz", args...))
		}
	}
	// The first node writes the shared credentials file; then the others.
	first := sc.nodes["east"][0]
	first.start(false)
	waitFor(t, "e1 writes the credentials file", 30*time.Second, func() bool {
		return fileExists(authFile)
	})
	for _, r := range all {
		for _, n := range sc.nodes[r] {
			if n != first {
				n.start(false)
			}
		}
	}
	for _, r := range all {
		for _, n := range sc.nodes[r] {
			n.waitUp(90 * time.Second)
		}
	}
	creds := readAuth(t, authFile)
	for _, r := range regions {
		var urls []string
		for _, ad := range a[r] {
			urls = append(urls, "nats://operator:"+creds.Operator+"@"+ad.client)
		}
		sc.urls[r] = strings.Join(urls, ",")
		sc.sysURL[r] = "nats://sys:" + creds.Sys + "@" + a[r][0].client
	}
	waitFor(t, "a natter nats node ensures the schema", 3*time.Minute, func() bool {
		for _, r := range regions {
			if slices.ContainsFunc(sc.nodes[r], func(n *proc) bool { return strings.Contains(n.logs.String(), `"msg":"schema ensured"`) }) {
				return true
			}
		}
		return false
	})
	for _, r := range regions {
		nc, err := nats.Connect(sc.urls[r], nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		sc.js[r], _ = jetstream.New(nc)
		if sc.sys[r], err = nats.Connect(sc.sysURL[r], nats.MaxReconnects(-1)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sc.sys[r].Close)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if sc.layout, err = schema.ReadLayout(ctx, sc.js["east"]); err != nil || sc.layout.Streams != 2 {
		t.Fatalf("layout %+v, %v", sc.layout, err)
	}
	hist := newProc(t, bin, "history", "/healthz", "history", "--nats-url", sc.urls["east"], "--log-level", "warn",
		"--data", filepath.Join(dir, "history"))
	hist.start(false)
	for _, r := range regions {
		g := newProc(t, bin, "gateway-"+r, "/healthz", "gateway", "--nats-url", sc.urls[r], "--log-level", "info",
			"--jwt-secret", secret, "--rate", "1000", "--rate-burst", "1000")
		g.start(false)
		sc.gw[r] = g
	}
	hist.waitUp(90 * time.Second)
	for _, r := range regions {
		sc.gw[r].waitUp(90 * time.Second)
	}
	return sc
}

// nodeName is node i of region r: e1, w2, and t1 for the witness.
func nodeName(r string, i int) string {
	if r == witness {
		return fmt.Sprintf("t%d", i+1)
	}
	return fmt.Sprintf("%s%d", r[:1], i+1)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// waitFor polls cond every 50 ms until it holds, failing the test after d.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}

// cluster is the cluster (region) stream lives in, as its leader says.
func (sc *supercluster) clusterOf(js jetstream.JetStream, stream string) (cluster, leader string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil || st.CachedInfo().Cluster == nil {
		return "", ""
	}
	return st.CachedInfo().Cluster.Name, st.CachedInfo().Cluster.Leader
}

// gatewaysUp counts the outbound gateway connections of every node of
// region r to the other region, from the servers' own GATEWAYZ.
func (sc *supercluster) gatewaysUp(r string) int {
	inbox := nats.NewInbox()
	sub, err := sc.sys[r].SubscribeSync(inbox)
	if err != nil {
		return -1
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sc.sys[r].PublishRequest("$SYS.REQ.SERVER.PING.GATEWAYZ", inbox, nil); err != nil {
		return -1
	}
	up := 0
	for {
		m, err := sub.NextMsg(2 * time.Second)
		if err != nil {
			return up
		}
		var z struct {
			Data struct {
				Name     string `json:"name"`
				Outbound map[string]struct {
					Connection *struct {
						Name string `json:"name"`
					} `json:"connection"`
				} `json:"outbound_gateways"`
			} `json:"data"`
		}
		if json.Unmarshal(m.Data, &z) == nil && z.Data.Name == r {
			for other, g := range z.Data.Outbound {
				if other != r && other != witness && g.Connection != nil {
					up++
				}
			}
		}
	}
}

// metaLeader is the JetStream meta leader as region r's nodes see it.
func (sc *supercluster) metaLeader(r string) string {
	var jsz struct {
		Data struct {
			Meta struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		} `json:"data"`
	}
	if m, err := sc.sys[r].Request("$SYS.REQ.SERVER.PING.JSZ", nil, 5*time.Second); err == nil {
		_ = json.Unmarshal(m.Data, &jsz)
	}
	return jsz.Data.Meta.Leader
}

// regionUser is one user's session and what it was delivered.
type regionUser struct {
	name, region string
	s            *client.Session

	mu   sync.Mutex
	got  map[string]map[uint64]uint64 // conv -> seq -> prev
	live map[string]int               // conv -> live pushes
}

func (u *regionUser) has(conv string, seq uint64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.got[conv][seq]
	return ok
}

// Two regions, each a 3-node NATS cluster, joined by NATS gateways
// through proxies the test controls (a supercluster on loopback). Users
// are homed in a region (their natter gateway is connected to their
// region's nodes only); conversation cE lives in east (CHAT_0, placed
// there with the buckets), cW in west (CHAT_1), each with members in
// both regions. Chat crosses the regions; then the inter-region link is
// cut: east keeps chatting in cE (its stream, its buckets and its fan-out
// are all in east), west members' sends into cW are acknowledged by
// west's stream, sends across the link wait; after the link is restored
// every send completes, nothing acknowledged is lost, and every member in
// either region holds every message of its conversations with an
// unbroken prev chain.
func TestChaosRegionsLinkCut(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: separate processes; not with -short")
	}
	started := time.Now()
	sc := startSupercluster(t, testbin.Natter(t))
	waitFor(t, "both regions' gateways connect to each other", 2*time.Minute, func() bool {
		return sc.gatewaysUp("east") >= 3 && sc.gatewaysUp("west") >= 3
	})
	// Placement: each message stream in its home region, the buckets in
	// east; and one meta group over the six nodes.
	for p, stream := range sc.layout.ChatStreams() {
		want := regions[p]
		if got, leader := sc.clusterOf(sc.js["east"], stream); got != want {
			t.Fatalf("%s is in cluster %q (leader %s), want %s", stream, got, leader, want)
		}
	}
	if got, _ := sc.clusterOf(sc.js["east"], schema.KVStream(schema.BucketConversations)); got != "east" {
		t.Fatalf("the CONVERSATIONS bucket is in cluster %q, want east", got)
	}
	t.Logf("supercluster up in %s", time.Since(started).Round(time.Second))

	users := map[string]*regionUser{}
	homes := map[string]string{"alice": "east", "erin": "east", "bob": "west", "wes": "west"}
	for _, name := range []string{"alice", "erin", "bob", "wes"} {
		u := &regionUser{name: name, region: homes[name], got: map[string]map[uint64]uint64{}, live: map[string]int{}}
		tok, err := auth.IssueHS256(secret, name, 2*time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		u.s, err = client.NewSession(ctx, client.SessionOptions{
			URLs:    []string{"ws://" + sc.gw[u.region].http + "/v1/ws"},
			Options: client.Options{Token: tok},
			OnMessage: func(m *protocol.Message, live bool) {
				u.mu.Lock()
				defer u.mu.Unlock()
				if u.got[m.Conv] == nil {
					u.got[m.Conv] = map[uint64]uint64{}
				}
				u.got[m.Conv][m.Seq] = m.Prev
				if live {
					u.live[m.Conv]++
				}
			},
		})
		cancel()
		if err != nil {
			t.Fatalf("%s connects to the %s gateway: %v", name, u.region, err)
		}
		t.Cleanup(func() { _ = u.s.Close() })
		users[name] = u
	}
	// cE and cW: groups of all four, created until one lands in each
	// region's stream.
	convs := map[string]string{}
	members := []string{"erin", "bob", "wes"}
	for i := 0; convs["east"] == "" || convs["west"] == ""; i++ {
		if i > 100 {
			t.Fatalf("no conversation in each region after %d groups", i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := users["alice"].s.Client(ctx)
		var conv *protocol.Conversation
		if err == nil {
			conv, err = c.CreateGroup(ctx, fmt.Sprintf("room %d", i), members...)
		}
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if r := regions[sc.layout.Partition(conv.Conv)]; convs[r] == "" {
			convs[r] = conv.Conv
		}
	}
	cE, cW := convs["east"], convs["west"]

	var (
		mu     sync.Mutex
		acked  = map[string][]uint64{}          // conv -> seqs acknowledged
		sender = map[string]map[uint64]string{} // conv -> seq -> who sent it
	)
	send := func(ctx context.Context, from, conv, id string) (uint64, error) {
		ack, err := users[from].s.Send(ctx, conv, id, map[string]string{"text": id})
		if err != nil {
			return 0, fmt.Errorf("%s sends %s in %s: %w", from, id, conv, err)
		}
		mu.Lock()
		acked[conv] = append(acked[conv], ack.Seq)
		if sender[conv] == nil {
			sender[conv] = map[uint64]string{}
		}
		sender[conv][ack.Seq] = from
		mu.Unlock()
		return ack.Seq, nil
	}
	mustSend := func(d time.Duration, from, conv, id string) uint64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		seq, err := send(ctx, from, conv, id)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	// delivered waits until every one of to but from holds seq of conv
	// (a sender's own session is not pushed its own message).
	delivered := func(what string, d time.Duration, from, conv string, seq uint64, to ...string) {
		t.Helper()
		var missing []string
		deadline := time.Now().Add(d)
		for {
			missing = missing[:0]
			for _, u := range to {
				if u != from && !users[u].has(conv, seq) {
					missing = append(missing, u+" ("+homes[u]+")")
				}
			}
			if len(missing) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s; %v lack seq %d of %s (in %s)", what, d, missing, seq, conv, sc.layout.StreamOf(conv))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// 1. Linked: chat across the regions, both ways, in both
	// conversations.
	for i := range 3 {
		for _, from := range []string{"alice", "bob"} {
			for _, conv := range []string{cE, cW} {
				id := fmt.Sprintf("linked-%s-%s-%d", from, conv, i)
				seq := mustSend(time.Minute, from, conv, id)
				delivered(id+" reaches every member across the regions", time.Minute, from, conv, seq, "alice", "erin", "bob", "wes")
			}
		}
	}
	t.Logf("linked: cross-region sends delivered in both directions (%s)", time.Since(started).Round(time.Second))

	// The JetStream meta group (all seven nodes) is led in east: with the
	// witness, east keeps its quorum through the cut.
	moveLeader(t, sc.sys["east"], "$JS.API.META.LEADER.STEPDOWN", "e1", func() string { return sc.metaLeader("east") })

	// 2. Cut the link.
	var linkCut atomic.Bool
	linkCut.Store(true)
	for _, p := range sc.proxies {
		p.sever(true)
	}
	waitFor(t, "every gateway connection between east and west down", time.Minute, func() bool {
		for _, p := range sc.proxies {
			if p.open() > 0 {
				return false
			}
		}
		return sc.gatewaysUp("east") == 0 && sc.gatewaysUp("west") == 0
	})
	cutAt := time.Now()
	t.Logf("link cut")
	// Sends that need the other side wait (the client retries) and must
	// complete once the link is back: across the link, and west's own,
	// whose gateway needs the JetStream API (the meta leader is in east)
	// and the CONVERSATIONS bucket (in east).
	var waiting sync.WaitGroup
	waitErr := make(chan error, 4)
	ackedInCut := map[string]bool{}
	for _, x := range []struct{ from, conv, id string }{
		{"bob", cE, "across-bob"}, {"alice", cW, "across-alice"}, {"bob", cW, "cut-west-bob"}, {"wes", cW, "cut-west-wes"},
	} {
		waiting.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			if _, err := send(ctx, x.from, x.conv, x.id); err != nil {
				waitErr <- err
				return
			}
			mu.Lock()
			ackedInCut[x.id] = linkCut.Load()
			mu.Unlock()
		})
	}
	// East keeps chatting in cE: acknowledged and delivered in east.
	var (
		eastSeqs []uint64
		took     []time.Duration // send to delivery in east, each
	)
	for i := range 6 {
		from := []string{"alice", "erin"}[i%2]
		id := fmt.Sprintf("cut-east-%d", i)
		at := time.Now()
		seq := mustSend(time.Minute, from, cE, id)
		eastSeqs = append(eastSeqs, seq)
		delivered(id+" reaches the east members of cE during the cut", time.Minute, from, cE, seq, "alice", "erin")
		took = append(took, time.Since(at).Round(time.Millisecond))
	}
	for _, seq := range eastSeqs {
		if users["bob"].has(cE, seq) || users["wes"].has(cE, seq) {
			t.Fatalf("cE seq %d reached west while the link was cut: was it cut?", seq)
		}
	}
	select {
	case err := <-waitErr:
		t.Fatalf("a send waiting for the link failed instead: %v", err)
	default:
	}
	mu.Lock()
	t.Logf("during the cut (%s): east chatted in cE, %d sends acked and delivered in east, each send to delivery %v; of the sends across the link and west's own, acked during the cut: %v",
		time.Since(cutAt).Round(time.Millisecond), len(eastSeqs), took, ackedInCut)
	mu.Unlock()

	// 3. Restore the link.
	linkCut.Store(false)
	for _, p := range sc.proxies {
		p.sever(false)
	}
	restoredAt := time.Now()
	waitFor(t, "the gateways connect again", 2*time.Minute, func() bool {
		return sc.gatewaysUp("east") >= 3 && sc.gatewaysUp("west") >= 3
	})
	done := make(chan struct{})
	go func() { waiting.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the sends waiting for the link did not complete within 3 minutes of its restore")
	}
	close(waitErr)
	for err := range waitErr {
		t.Fatal(err)
	}
	t.Logf("restored: the waiting sends completed %s after the restore", time.Since(restoredAt).Round(time.Millisecond))
	// One more message from each side in each conversation: its prev
	// reveals to every member what its pushes lost while the link was
	// down, and the session syncs.
	for _, from := range []string{"alice", "bob"} {
		for _, conv := range []string{cE, cW} {
			mustSend(time.Minute, from, conv, "after-"+from+"-"+conv)
		}
	}

	// Everyone catches up: every member holds every acknowledged message
	// of both conversations, with an unbroken prev chain.
	mu.Lock()
	want := map[string][]uint64{}
	for conv, seqs := range acked {
		s := slices.Clone(seqs)
		slices.Sort(s)
		want[conv] = s
	}
	mu.Unlock()
	for _, conv := range []string{cE, cW} {
		for name, u := range users {
			waitFor(t, fmt.Sprintf("%s (%s) catches up on %s", name, u.region, conv), 2*time.Minute, func() bool {
				for _, seq := range want[conv] {
					if sender[conv][seq] != name && !u.has(conv, seq) {
						return false
					}
				}
				return true
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, conv := range []string{cE, cW} {
		for _, name := range []string{"erin", "wes"} {
			c, err := users[name].s.Client(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			prev := uint64(0)
			for after := uint64(0); ; {
				page, err := syncRetry(ctx, c, conv, after)
				if err != nil {
					t.Fatalf("%s syncs %s after %d: %v", name, conv, after, err)
				}
				for _, m := range page.Messages {
					if m.Prev != prev {
						t.Fatalf("%s's sync of %s: seq %d has prev %d, want %d (the chain is broken)", name, conv, m.Seq, m.Prev, prev)
					}
					seqs = append(seqs, m.Seq)
					prev, after = m.Seq, m.Seq
				}
				if !page.More || len(page.Messages) == 0 {
					break
				}
			}
			// The membership events are items too; compare the messages.
			var msgs []uint64
			for _, s := range seqs {
				if slices.Contains(want[conv], s) {
					msgs = append(msgs, s)
				}
			}
			if !slices.Equal(msgs, want[conv]) {
				t.Fatalf("%s (%s) syncs %s: messages %v, acknowledged %v", name, homes[name], conv, msgs, want[conv])
			}
		}
	}
	t.Logf("after the restore every member in both regions holds all %d + %d acknowledged messages; whole test %s",
		len(want[cE]), len(want[cW]), time.Since(started).Round(time.Second))
}

// syncRetry is a sync page, retried while the server says unavailable.
func syncRetry(ctx context.Context, c *client.Client, conv string, after uint64) (*protocol.MessagesFrame, error) {
	for {
		page, err := c.Sync(ctx, conv, after, 200)
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.CodeUnavailable || ctx.Err() != nil {
			return page, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
