package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// The e2e suite runs against one of two NATS topologies, chosen by
// NATTER_E2E_TOPOLOGY:
//
//   - "" or "single" (the default): natter serve's embedded NATS alone, one
//     node, the one CHAT stream.
//   - "cluster3x4": the embedded NATS of every App a test starts with
//     start (or startWith without NATSURL) is node n1 of a 3-node cluster
//     whose other two nodes (n2, n3) run in-process beside it, and the
//     schema has 4 partition streams CHAT_0 … CHAT_3, every stream and
//     bucket R3. The App is still natter serve with every role (the
//     operator process ensuring the schema); extra roles a test starts
//     against e.app.NATS() connect to n1 as in the one-node case.
//
// docs/scaling.md ("Tests") lists what runs in which mode.
const (
	topologyEnv     = "NATTER_E2E_TOPOLOGY"
	topologySingle  = "single"
	topologyCluster = "cluster3x4"

	clusterNodes   = 3
	clusterStreams = 4
)

// topology is the NATTER_E2E_TOPOLOGY of this run, checked once.
var topology = sync.OnceValue(func() string {
	switch v := os.Getenv(topologyEnv); v {
	case "", topologySingle:
		return topologySingle
	case topologyCluster:
		return topologyCluster
	default:
		panic(fmt.Sprintf("%s=%q: want %q or %q", topologyEnv, v, topologySingle, topologyCluster))
	}
})

// clustered reports whether this run uses the 3-node, 4-stream cluster.
func clustered() bool { return topology() == topologyCluster }

// clusterPeers are the two in-process nodes that join an App's embedded
// NATS (n1) in the cluster topology, with what n1 needs to join them.
// n1's own ports are random: it solicits the routes of n2 and n3, and
// they learn it from the route (ports chosen up front for n1 could be
// taken meanwhile by the ephemeral port of some connection).
type clusterPeers struct {
	routes  []string // nats-route:// of n2, n3
	clients []string // client host:port of n2, n3
	auth    string   // the shared credentials file
}

var (
	peersMu sync.Mutex
	// peersByDir keeps the peers of each n1 data directory: a test that
	// restarts natter serve on the same DataDir finds n1's cluster again.
	peersByDir = map[string]*clusterPeers{}
)

// clusterize turns cfg's embedded NATS into node n1 of a 3-node cluster,
// starting n2 and n3 (once per n1 data directory, shut down by t's
// cleanup after the Apps), and asks for 4 partition streams, R3.
func clusterize(t testing.TB, cfg *app.Config) {
	t.Helper()
	if cfg.NATSURL != "" {
		return
	}
	if cfg.Embedded.DataDir == "" {
		cfg.Embedded.DataDir = t.TempDir()
	}
	p := peersFor(t, cfg.Embedded.DataDir, cfg.Embedded.TLSCert, cfg.Embedded.TLSKey)
	emb := &cfg.Embedded
	emb.ServerName = "n1"
	emb.ClusterName = "e2e"
	emb.ClusterListen = "127.0.0.1:-1"
	emb.Routes = p.routes
	emb.AuthFile = p.auth
	emb.Streams = clusterStreams
	emb.Servers = p.clients
	cfg.Schema.Streams = clusterStreams
	cfg.Schema.Replicas = clusterNodes
}

func peersFor(t testing.TB, dir, cert, key string) *clusterPeers {
	t.Helper()
	peersMu.Lock()
	defer peersMu.Unlock()
	if p, ok := peersByDir[dir]; ok {
		return p
	}
	p := &clusterPeers{auth: filepath.Join(t.TempDir(), "nats-auth.json")}
	for range clusterNodes - 1 {
		p.routes = append(p.routes, "nats-route://"+freeAddr(t))
		p.clients = append(p.clients, freeAddr(t))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range clusterNodes - 1 {
		name := fmt.Sprintf("n%d", i+2)
		s, err := natsrv.Start(ctx, natsrv.Config{
			Listen:        p.clients[i],
			Servers:       p.clients,
			DataDir:       t.TempDir(),
			ServerName:    name,
			ClusterName:   "e2e",
			ClusterListen: p.routes[i][len("nats-route://"):],
			Routes:        p.routes,
			AuthFile:      p.auth,
			Streams:       clusterStreams,
			TLSCert:       cert,
			TLSKey:        key,
			Logger:        testLogger(),
		})
		if err != nil {
			t.Fatalf("cluster node %s: %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("shut down cluster node %s: %v", name, err)
			}
		})
	}
	peersByDir[dir] = p
	t.Cleanup(func() {
		peersMu.Lock()
		defer peersMu.Unlock()
		delete(peersByDir, dir)
	})
	return p
}

// freeAddr is a loopback host:port that was free a moment ago: every
// node's route and client ports must be known before the first starts.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// messageLayout is the schema's message streams (schema.Layout): the one
// CHAT, or CHAT_0 … CHAT_3 in the cluster topology.
func messageLayout(t testing.TB, js jetstream.JetStream) schema.Layout {
	t.Helper()
	l, err := schema.ReadLayout(ctxT(t), js)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// groupInStreamOf has c create groups with members until one is in the
// message stream of conv (the first, in the one-stream topology): seqs of
// different partition streams repeat each other, so only a message of a
// conversation of the same stream is surely no message of conv's at its
// seq.
func (e *env) groupInStreamOf(t testing.TB, c *client.Client, conv, title string, members ...string) *protocol.Conversation {
	t.Helper()
	_, js := e.operatorJS(t)
	l := messageLayout(t, js)
	for range 100 {
		g, err := c.CreateGroup(ctxT(t), title, members...)
		if err != nil {
			t.Fatal(err)
		}
		if l.StreamOf(g.Conv) == l.StreamOf(conv) {
			return g
		}
	}
	t.Fatalf("100 groups, none in the stream of %s", conv)
	return nil
}
