package natstest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
)

// Cluster is an in-process JetStream cluster of natsrv servers on random
// loopback ports, sharing one credentials file.
type Cluster struct {
	// Servers are the nodes, named n1, n2, ...; a test may shut one down.
	Servers []*natsrv.Server
}

// StartCluster starts an n-node JetStream cluster on tb.TempDir() and
// returns once JetStream has a meta leader and every node is a peer. The
// nodes are shut down by tb.Cleanup.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	return StartClusterStreams(tb, n, 0)
}

// StartClusterStreams is StartCluster with every node's subject mapping
// for streams partition streams (natsrv.Config.Streams): the cluster for
// a schema ensured with schema.Config{Streams: streams}.
func StartClusterStreams(tb testing.TB, n, streams int) *Cluster {
	tb.Helper()
	w := &tbWriter{tb: tb}
	tb.Cleanup(w.close)
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := tb.TempDir()
	routes := make([]string, n)
	listens := make([]string, n)
	// Client ports are chosen up front too, so that every node's URL
	// files list every node (natsrv.Config.Servers).
	clients := make([]string, n)
	for i := range n {
		listens[i] = freePort(tb)
		routes[i] = "nats-route://" + listens[i]
		clients[i] = freePort(tb)
	}
	c := &Cluster{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		// Sequential starts: the first creates the shared credentials file.
		s, err := natsrv.Start(ctx, natsrv.Config{
			Listen:        clients[i],
			Servers:       clients,
			DataDir:       filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			ServerName:    fmt.Sprintf("n%d", i+1),
			ClusterName:   "natstest",
			ClusterListen: listens[i],
			Routes:        routes,
			AuthFile:      filepath.Join(dir, "nats-auth.json"),
			Logger:        log,
			Streams:       streams,
		})
		if err != nil {
			tb.Fatalf("natstest: start cluster node %d: %v", i+1, err)
		}
		c.Servers = append(c.Servers, s)
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				tb.Errorf("natstest: shut down node %d: %v", i+1, err)
			}
		})
	}
	c.waitMeta(tb, n)
	return c
}

// freePort returns a loopback host:port that was free a moment ago. Route
// listeners need their ports before any node starts, since every node
// names every other.
func freePort(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("natstest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitMeta waits until some node sees a JetStream meta leader and n peers.
func (c *Cluster) waitMeta(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Servers {
			// Peers answers on the meta leader only, and counts the
			// nodes that are online with current stats.
			if len(s.Server().JetStreamClusterPeers()) >= n {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("natstest: no JetStream meta leader with %d peers after 30 s", n)
}

// URL returns the operator URLs of the running nodes, comma separated: the
// form nats.Connect and --nats-url take.
func (c *Cluster) URL() string {
	var urls []string
	for _, s := range c.Servers {
		if s.Server().Running() {
			urls = append(urls, s.OperatorURL())
		}
	}
	return strings.Join(urls, ",")
}

// Connect opens a TCP connection to any running node (failing over to the
// others) and a JetStream context on it; it is closed by tb.Cleanup.
func (c *Cluster) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(c.URL(), nats.Name(tb.Name()), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		tb.Fatalf("natstest: connect to cluster: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// ServerNamed returns the node with the NATS server name name, or nil.
func (c *Cluster) ServerNamed(name string) *natsrv.Server {
	for _, s := range c.Servers {
		if s.Server().Name() == name {
			return s
		}
	}
	return nil
}
