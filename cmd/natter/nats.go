package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/retention"
	"github.com/natter-chat/natter/nats/schema"
)

// natsConfig is what `natter nats` runs: one embedded NATS node with
// JetStream, optionally routed to the other nodes of a cluster, and an
// HTTP listener for probes and metrics.
type natsConfig struct {
	server natsrv.Config
	node   app.NodeConfig
	http   string
}

func natsFlags(args []string, stderr io.Writer) (natsConfig, error) {
	fs := flag.NewFlagSet("natter nats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4222", "NATS client listen address")
	name := fs.String("name", "", "server name, unique in the cluster (required with --cluster-name)")
	cluster := fs.String("cluster-name", "", "cluster name; empty runs one node without routes")
	clusterListen := fs.String("cluster-listen", "127.0.0.1:6222", "route listen address (with --cluster-name)")
	routes := fs.String("routes", "", "comma-separated nats-route://host:port URLs of the cluster's nodes (this node's own may be listed)")
	servers := fs.String("servers", "", "comma-separated host:port of every node's client listener as the roles reach them, listed after this node in the URL files (nats.url, nats-<role>.url) so a role fails over to them (with --cluster-name); default: each --routes host with this node's --listen port")
	dataDir := fs.String("data", "./data", "data directory: JetStream store, nats.url and nats-sys.url of this node")
	authFile := fs.String("auth-file", "", "credentials file shared by every node (created with fresh passwords when missing; default <data>/nats-auth.json)")
	syncMode := fs.String("sync", "interval", `JetStream fsync: "interval" or "always"`)
	monitor := fs.String("monitor", "", "NATS HTTP monitoring listen address (/varz, /jsz); empty disables it")
	httpAddr := fs.String("http", "127.0.0.1:8222", "HTTP listen address: /healthz, /readyz, /metrics")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "json", "json or text")
	hotWindow := fs.Duration("hot-window", 7*24*time.Hour, "how long messages stay in the CHAT stream at least (longer while the history store lacks them); give every node the same")
	dedupe := fs.Duration("dedupe-window", 10*time.Minute, "how long a (sender, client_id) is remembered for idempotent sends")
	fastDedupe := fs.Duration("dedupe-fast-window", 0, "how long JetStream itself remembers each send's Nats-Msg-Id, in memory on every replica (about 160 B per message); 0: the whole --dedupe-window. Shorter (e.g. 2m) bounds the memory once every client marks its resends: a repeat marked \"resend\" is caught over the whole --dedupe-window, an unmarked one only within this")
	replicas := fs.Int("replicas", 0, "replicas of the streams and KV buckets; 0 keeps the existing ones, else 3 when --routes names ≥ 3 nodes, else 1")
	trimEvery := fs.Duration("trim-interval", time.Minute, "how often this node trims CHAT (at least 4 times per hot window)")
	partitions := fs.Int("partitions", 0, partitionsHelp)
	streams := fs.Int("streams", 0, streamsHelp+"; give every node the same")
	regions := addRegionFlags(fs)
	if err := fs.Parse(args); err != nil {
		return natsConfig{}, err
	}
	if fs.NArg() > 0 {
		return natsConfig{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return natsConfig{}, err
	}
	switch *syncMode {
	case "interval", "always":
	default:
		return natsConfig{}, fmt.Errorf(`--sync must be "interval" or "always", not %q`, *syncMode)
	}
	cfg := natsConfig{http: *httpAddr, server: natsrv.Config{
		Listen:      *listen,
		DataDir:     *dataDir,
		ServerName:  *name,
		SyncAlways:  *syncMode == "always",
		HTTPMonitor: *monitor,
		Logger:      log,
		AuthFile:    *authFile,
		Streams:     *streams,
	}}
	cfg.node = app.NodeConfig{Logger: log, NewReplicas: 1,
		Schema:    schema.Config{HotWindow: *hotWindow, Duplicates: *dedupe, FastDuplicates: *fastDedupe, Replicas: *replicas, Partitions: *partitions, Streams: *streams},
		Retention: retention.Config{Interval: *trimEvery}}
	if *cluster != "" {
		cfg.server.ClusterName = *cluster
		cfg.server.ClusterListen = *clusterListen
		for _, r := range strings.Split(*routes, ",") {
			if r = strings.TrimSpace(r); r != "" {
				cfg.server.Routes = append(cfg.server.Routes, r)
			}
		}
		for _, a := range strings.Split(*servers, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.server.Servers = append(cfg.server.Servers, a)
			}
		}
		if len(cfg.server.Routes) >= 3 {
			cfg.node.NewReplicas = 3
		}
	} else if *routes != "" || *servers != "" {
		return cfg, errors.New("--routes and --servers need --cluster-name")
	}
	return cfg, regions.apply(&cfg)
}

// natsNode runs `natter nats` until SIGINT or SIGTERM. The node owns the
// schema: it ensures the streams, buckets and consumers with its flags
// once the cluster has a leader, then trims CHAT (app.Node).
func natsNode(args []string, stderr io.Writer) error {
	cfg, err := natsFlags(args, stderr)
	if err != nil {
		return err
	}
	log := cfg.server.Logger
	ctx, stop := signalContext()
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	srv, err := natsrv.Start(startCtx, cfg.server)
	cancel()
	if err != nil {
		return err
	}
	node, err := app.NewNode(srv, cfg.node)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	nodeCtx, stopNode := context.WithCancel(ctx)
	nodeDone := make(chan struct{})
	go func() {
		defer close(nodeDone)
		_ = node.Run(nodeCtx)
	}()
	defer func() { stopNode(); <-nodeDone }()
	ln, err := net.Listen("tcp", cfg.http)
	if err != nil {
		stopNode()
		<-nodeDone
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("listen %s: %w", cfg.http, err)
	}
	hs := &http.Server{Handler: natsMux(srv, app.RetentionMetrics(node.Trimmer())), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	log.Info("natter nats is running", "http", ln.Addr().String(), "url", natsrv.RedactURLs(srv.ClientURL()), "route_url", natsrv.RedactURLs(srv.RouteURL()))
	<-ctx.Done()
	log.Info("shutting down")
	stopNode()
	<-nodeDone
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return errors.Join(hs.Shutdown(sctx), srv.Shutdown(sctx))
}

// migrateNATSFlags are natter migrate's flags for the NATS schema: the
// operator step for a NATS cluster that natter nats does not run. Roles
// never create or change the schema.
type migrateNATSFlags struct {
	url, ca                       *string
	hotWindow, dedupe, fastDedupe *time.Duration
	replicas, partitions, streams *int
}

// partitionsHelp is the --partitions flag's help, the same on every
// command that ensures the schema.
var partitionsHelp = fmt.Sprintf("fan-out partitions of the CHAT stream (1 to %d); 0 keeps the stream's, or %d for a new stream or one made before partitions (upgraded in place); changing it on a partitioned stream is refused",
	schema.MaxPartitions, schema.DefaultPartitions)

// streamsHelp is the --streams flag's help, the same on every command
// that ensures the schema.
var streamsHelp = fmt.Sprintf("message streams (1 to %d): 1 is the one CHAT stream; N > 1 makes CHAT_0 … CHAT_{N-1}, a conversation always in partition(N) of its id, each stream its own Raft group (and fan-out partition); 0 keeps the schema's, or 1 for a new one; set when the schema is created, never changed in place",
	schema.MaxStreams)

func addMigrateNATSFlags(fs *flag.FlagSet) *migrateNATSFlags {
	return &migrateNATSFlags{
		url:        fs.String("nats-url", "", "the operator's NATS URL (<data>/nats.url, never a role's): create or update the NATS streams, buckets and consumers"),
		ca:         fs.String("nats-ca", "", "PEM CA file to trust for a tls:// --nats-url"),
		hotWindow:  fs.Duration("hot-window", 7*24*time.Hour, "how long messages stay in the CHAT stream at least (with --nats-url)"),
		dedupe:     fs.Duration("dedupe-window", 10*time.Minute, "how long a (sender, client_id) is remembered for idempotent sends (with --nats-url)"),
		fastDedupe: fs.Duration("dedupe-fast-window", 0, "the part of --dedupe-window JetStream itself remembers, in memory; 0: all of it (with --nats-url)"),
		replicas:   fs.Int("replicas", 0, "replicas of the streams and KV buckets (with --nats-url); 0 keeps the existing ones, else 3 when the URL list names ≥ 3 servers"),
		partitions: fs.Int("partitions", 0, partitionsHelp+" (with --nats-url)"),
		streams:    fs.Int("streams", 0, streamsHelp+" (with --nats-url); every NATS server of an external NATS needs the account mapping of docs/scaling.md"),
	}
}

func (f *migrateNATSFlags) set() bool { return *f.url != "" }

func (f *migrateNATSFlags) run(stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := app.MigrateNATS(ctx, app.MigrateConfig{URL: *f.url, RootCA: *f.ca,
		Schema: schema.Config{HotWindow: *f.hotWindow, Duplicates: *f.dedupe, FastDuplicates: *f.fastDedupe, Replicas: *f.replicas, Partitions: *f.partitions, Streams: *f.streams}})
	if err != nil {
		return fmt.Errorf("NATS schema: %w", err)
	}
	_, err = fmt.Fprintln(stdout, "the NATS schema is up to date")
	return err
}

// credentialsCmd prints the NATS URL list of one user (a role, or the
// operator) for the servers named, from the credentials file every node
// shares, creating it with fresh passwords when it is missing: how an
// operator gives each role its own credentials.
func credentialsCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter credentials", flag.ContinueOnError)
	fs.SetOutput(stderr)
	authFile := fs.String("auth-file", "nats-auth.json", "the cluster's credentials file (natter nats --auth-file); created with fresh passwords when missing")
	servers := fs.String("servers", "", "comma-separated host:port of every NATS node, as the role reaches them")
	user := fs.String("user", "", "the role ("+strings.Join(natsrv.Roles, ", ")+") or operator")
	tls := fs.Bool("tls", false, "tls:// URLs (the nodes' client port requires TLS)")
	natsConfig := fs.Bool("nats-config", false, "instead, print every role user with its password and permissions, as entries of a NATS server configuration's users list (for a NATS cluster natter nats does not run)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *natsConfig && fs.NArg() == 0 {
		users, err := natsrv.RoleUsersConfig(*authFile)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, users)
		return err
	}
	if fs.NArg() > 0 || *servers == "" || *user == "" {
		return errors.New("usage: natter credentials --auth-file FILE --servers host:port,... --user ROLE (or --nats-config)")
	}
	urls, err := natsrv.UserURLs(*authFile, strings.Split(*servers, ","), *user, *tls)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, urls)
	return err
}
