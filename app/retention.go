package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/natter-chat/natter/metrics"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/retention"
	"github.com/natter-chat/natter/nats/schema"
)

// startRetention runs the CHAT trimmer when this process holds the
// embedded server, whose internal user may purge; a role against an
// external NATS leaves that to the natter nats nodes.
func (a *App) startRetention(ctx context.Context) (*part, error) {
	if a.nats == nil {
		return nil, nil
	}
	_, js, err := a.connect(ctx, "", "natter-retention")
	if err != nil {
		return nil, err
	}
	cfg := a.cfg.Retention
	if cfg.Logger == nil {
		cfg.Logger = a.log
	}
	if cfg.Window <= 0 {
		cfg.Window = a.cfg.Schema.HotWindow
	}
	t := retention.New(cfg, js)
	a.obs.reg.MustRegister(RetentionMetrics(t))
	return &part{name: "retention", run: t.Run}, nil
}

// RetentionMetrics publishes a trimmer's history lag and totals.
func RetentionMetrics(t *retention.Trimmer) prometheus.Collector {
	return metrics.NewRetention(func() metrics.RetentionSample {
		s := t.Stats()
		return metrics.RetentionSample{HistoryLag: s.Last.HistoryLag, Held: s.Last.Held,
			Purged: s.Purged, Errors: s.Errors, LastSuccess: s.Last.At}
	})
}

// NodeConfig is what a natter nats node owns besides its NATS server: the
// schema's settings and the CHAT trimmer.
type NodeConfig struct {
	// Schema is ensured with these settings, the node's flags.
	Schema schema.Config
	// NewReplicas is the replica count of a schema made from scratch when
	// Schema.Replicas is 0 (an existing CHAT keeps its own): 3 for a
	// cluster of three or more nodes, else 1.
	NewReplicas int
	// Retention configures the trimmer; its Window defaults to
	// Schema.HotWindow.
	Retention retention.Config
	// Logger, slog.Default when nil.
	Logger *slog.Logger
}

// Node is the operator's part of a natter nats node: it ensures the schema
// and trims CHAT, over an in-process connection as the server's internal
// user.
type Node struct {
	cfg     NodeConfig
	nc      *nats.Conn
	js      jetstream.JetStream
	trimmer *retention.Trimmer
	srv     *natsrv.Server
}

// NewNode connects to srv. Run does the work; it closes the connection.
func NewNode(srv *natsrv.Server, cfg NodeConfig) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Retention.Logger == nil {
		cfg.Retention.Logger = cfg.Logger
	}
	if cfg.Retention.Window <= 0 {
		cfg.Retention.Window = cfg.Schema.HotWindow
	}
	nc, err := srv.Connect("natter-operator", nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	return &Node{cfg: cfg, nc: nc, js: js, srv: srv, trimmer: retention.New(cfg.Retention, js)}, nil
}

// Trimmer is the node's CHAT trimmer, for its metrics.
func (n *Node) Trimmer() *retention.Trimmer { return n.trimmer }

// Run ensures the schema, retrying every failure (a cluster has no meta
// leader until a quorum of nodes runs), then trims CHAT until ctx ends.
// It returns nil once ctx ended, with the connection closed.
func (n *Node) Run(ctx context.Context) error {
	defer n.nc.Close()
	for {
		err := ensureSchema(ctx, n.js, n.cfg.Schema, n.cfg.NewReplicas, n.cfg.Logger)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = applyStreams(ctx, n.srv, n.js)
		}
		if err == nil {
			n.cfg.Logger.Info("schema ensured", "hot_window", n.cfg.Schema.HotWindow, "replicas", n.cfg.Schema.Replicas)
			break
		}
		n.cfg.Logger.Error("ensuring the schema failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
	users := make(chan struct{}, 3)
	go func() {
		defer func() { users <- struct{}{} }()
		FollowStreams(ctx, n.srv, n.js, n.cfg.Logger)
	}()
	go func() {
		defer func() { users <- struct{}{} }()
		_ = syncServiceUsers(ctx, n.srv, n.js, n.cfg.Logger)
	}()
	go func() {
		defer func() { users <- struct{}{} }()
		_ = syncServiceConsumers(ctx, n.js, n.cfg.Logger)
	}()
	defer func() { <-users; <-users; <-users }()
	return n.trimmer.Run(ctx)
}
