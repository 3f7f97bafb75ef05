// Package natsrv runs the embedded NATS server of `natter serve`: one node
// with JetStream on a file store, listening on loopback by default, with
// password users in a CHAT account and a SYS system account. It never
// accepts a client without credentials; the passwords are generated on
// first start and kept in the data directory, next to nats.url, the URL
// operators and internal services connect with.
//
// JetStream's file store acknowledges a write once it is in the file (the
// page cache), which survives a kill -9 of the process but not a power
// loss before the next sync interval (2 min by default). Config.SyncAlways
// fsyncs every write instead, at a large cost in write throughput; in a
// cluster, R3 streams are the real durability answer.
package natsrv

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
)

// Defaults applied by Start to zero Config fields.
const (
	DefaultListen     = "127.0.0.1:4222"
	DefaultServerName = "natter"
	DefaultMaxPayload = 4 << 20
)

// readyTimeout bounds Start's wait for the server even when ctx has no
// deadline.
const readyTimeout = 30 * time.Second

// Config configures the embedded server. The zero value of every field but
// DataDir is usable; fields added later (cluster routes) will keep zero
// values meaning "off", so callers setting fields by name do not break.
type Config struct {
	// Listen is the host:port of the NATS client listener, DefaultListen
	// when empty. Port 0 or -1 picks a random free port.
	Listen string
	// DataDir holds the JetStream file store (DataDir/jetstream) and the
	// credentials files nats-auth.json, nats.url and nats-sys.url. Required;
	// created with mode 0700 when missing.
	DataDir string
	// ServerName is the NATS server name, DefaultServerName when empty.
	ServerName string
	// SyncAlways makes JetStream fsync every write instead of on its sync
	// interval.
	SyncAlways bool
	// MaxPayload is the largest message accepted, DefaultMaxPayload when 0.
	MaxPayload int32
	// HTTPMonitor is the host:port of the NATS HTTP monitoring endpoint;
	// empty disables it.
	HTTPMonitor string
	// TLSCert and TLSKey are PEM files; when set, the client port requires
	// TLS and the URLs this server writes use tls://. In-process
	// connections need no TLS.
	TLSCert, TLSKey string
	// Logger receives the NATS server's logs (Info and above); nil discards
	// them.
	Logger *slog.Logger

	// ClusterName names the cluster this node joins; empty runs a single
	// node without routes. Every node of a cluster needs a unique
	// ServerName.
	ClusterName string
	// ClusterListen is the host:port of the route listener (port 0 or -1
	// picks a random free port); required with ClusterName.
	ClusterListen string
	// Routes are the nats-route://host:port URLs of the other nodes (this
	// node's own may be included: the server skips it). Without userinfo
	// they get the route credentials of the shared credentials file.
	Routes []string
	// Servers are the host:port of every node's client listener as roles
	// reach them. The URL files list this node's address first, then
	// these (duplicates dropped), so a role given any node's file fails
	// over to the others and can start while that node is down. Empty in
	// a cluster: the host of each of Routes with this node's Listen port
	// (every node listening on the same port, as in deploy/), but for a
	// host that is ServerName or starts with ServerName and a dot (this
	// node); nothing when that port is random. Ignored without
	// ClusterName.
	Servers []string
	// AuthFile is the credentials file shared by every node of a cluster
	// (the format of DataDir/nats-auth.json); empty keeps it in DataDir.
	// Created with fresh passwords when missing: start one node first, or
	// copy the file to every node.
	AuthFile string
	// Streams is the number of message streams of the schema
	// (schema.Config.Streams): above 1 the CHAT account maps
	// chat.msg.<conv> and chat.member.<conv> to the conversation's
	// partition (schema.Mappings). Every node of a cluster needs the same;
	// 0 or 1 maps nothing (the one CHAT stream).
	Streams int

	// Region, when set, tags the node RegionTag(Region), which stream
	// placement names (docs/scaling.md, Regions). In a supercluster it is
	// the cluster name, which it defaults to with GatewayListen.
	Region string
	// GatewayListen is the host:port of the gateway listener that joins
	// this node's cluster (a region) to the other clusters of a
	// supercluster; empty: no gateways. Needs ClusterName.
	GatewayListen string
	// GatewayAdvertise is the host:port the other regions dial for this
	// node's gateway (gossiped to them), when not GatewayListen: a proxy
	// or a public address.
	GatewayAdvertise string
	// Gateways are the other regions (this one's own may be listed: the
	// server skips it).
	Gateways []Gateway
}

// Server is a running embedded NATS server. Its methods are safe for
// concurrent use.
type Server struct {
	ns    *server.Server
	log   *slog.Logger
	creds credentials
	host  string // host:port clients dial, with the real bound port
	tls   bool   // the client port requires TLS
	// routeAddr is host:port of the route listener, "" without a cluster.
	routeAddr string
	// peers are the other nodes' client host:port the URL files list
	// after host (Config.Servers).
	peers   []string
	dataDir string
	cfg     Config // what Start was given: reloads rebuild the options from it

	authn     *authenticator
	reloadMu  sync.Mutex // serializes SetServiceUsers
	nServices int        // service users installed (SetServiceUsers)

	shutdownOnce sync.Once
	done         chan struct{} // closed once the server has shut down
}

// Start starts the server, writes DataDir/nats.url and DataDir/nats-sys.url
// and returns once it accepts connections with JetStream enabled, or an
// error if that did not happen before ctx ended or within 30 s. On error
// nothing of the server is left running.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsrv: start: %w", err)
	}
	if cfg.DataDir == "" {
		return nil, ErrNoDataDir
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := options(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("natsrv: data directory: %w", err)
	}
	authPath := cfg.AuthFile
	if authPath == "" {
		authPath = filepath.Join(cfg.DataDir, authFile)
	}
	creds, err := loadCredentials(authPath)
	if err != nil {
		return nil, err
	}
	s := &Server{log: log, creds: creds, cfg: cfg, tls: cfg.TLSCert != "", dataDir: cfg.DataDir, done: make(chan struct{})}
	opts, err := s.buildOptions()
	if err != nil {
		return nil, err
	}

	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsrv: new server: %w", err)
	}
	bridge := newSlogLogger(log)
	ns.SetLoggerV2(bridge, false, false, false)
	s.ns = ns
	s.authn.ns.Store(ns) // before the first client
	ns.Start()

	if err := s.waitReady(ctx, bridge.fatal); err != nil {
		s.stop()
		return nil, err
	}
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		s.stop()
		return nil, fmt.Errorf("%w: no TCP listener", ErrNotReady)
	}
	s.host = net.JoinHostPort(dialHost(addr.IP), strconv.Itoa(addr.Port))
	s.peers = peerAddrs(cfg, opts, s.host)
	if err := s.writeURLs(cfg.DataDir); err != nil {
		s.stop()
		return nil, err
	}
	if cfg.ClusterName != "" {
		if ca := ns.ClusterAddr(); ca != nil {
			s.routeAddr = net.JoinHostPort(dialHost(ca.IP), strconv.Itoa(ca.Port))
		}
	}
	log.Info("embedded NATS server started", "url", RedactURLs(s.ClientURL()), "data_dir", cfg.DataDir,
		"sync_always", cfg.SyncAlways, "server_name", opts.ServerName, "cluster", cfg.ClusterName,
		"route_listen", s.routeAddr, "routes", len(opts.Routes), "url_file_peers", s.peers)
	return s, nil
}

// options turns cfg into NATS server options, without accounts.
func options(cfg Config) (*server.Options, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, port, err := splitListen(listen)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName:             cfg.ServerName,
		Host:                   host,
		Port:                   port,
		MaxPayload:             cfg.MaxPayload,
		NoSigs:                 true, // the binary handles signals
		JetStream:              true,
		StoreDir:               cfg.DataDir, // the server appends "jetstream"
		SyncAlways:             cfg.SyncAlways,
		DisableJetStreamBanner: true,
	}
	if opts.ServerName == "" {
		opts.ServerName = DefaultServerName
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = DefaultMaxPayload
	}
	if cfg.HTTPMonitor != "" {
		if opts.HTTPHost, opts.HTTPPort, err = splitListen(cfg.HTTPMonitor); err != nil {
			return nil, err
		}
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey})
		if err != nil {
			return nil, fmt.Errorf("natsrv: TLS: %w", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSTimeout = tc, true, 5
	}
	return opts, nil
}

// splitListen parses host:port; port 0 becomes -1, the NATS server's
// "random port" (0 means "default port" to it).
func splitListen(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q: %w", ErrInvalidListen, hostport, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("%w: %q: bad port", ErrInvalidListen, hostport)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// dialHost is the host clients should dial for a listener bound to ip: a
// wildcard listener is reached through loopback.
func dialHost(ip net.IP) string {
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		return "127.0.0.1"
	case ip.Equal(net.IPv6unspecified):
		return "::1"
	}
	return ip.String()
}

// waitReady waits until the server accepts connections and JetStream is
// enabled for the CHAT account.
func (s *Server) waitReady(ctx context.Context, fatal <-chan error) error {
	deadline := time.Now().Add(readyTimeout)
	for !s.ns.ReadyForConnections(50 * time.Millisecond) {
		select {
		case err := <-fatal:
			return err
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNotReady, ctx.Err())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: not ready for connections after %s", ErrNotReady, readyTimeout)
		}
	}
	select {
	case err := <-fatal:
		return err
	default:
	}
	if !s.ns.JetStreamEnabled() {
		return fmt.Errorf("%w: JetStream is not enabled", ErrNotReady)
	}
	acc, err := s.ns.LookupAccount(accountChat)
	if err != nil {
		return fmt.Errorf("%w: account %s: %w", ErrNotReady, accountChat, err)
	}
	if !acc.JetStreamEnabled() {
		return fmt.Errorf("%w: JetStream is not enabled for account %s", ErrNotReady, accountChat)
	}
	return nil
}

// writeURLs writes nats.url, nats-sys.url and one nats-<role>.url per role
// user on every start (with a random port the address changes): each a
// comma-separated list, this node first, then the other nodes (peers).
func (s *Server) writeURLs(dir string) error {
	files := map[string]string{
		urlFile:    s.urlList(url.UserPassword(userOperator, s.creds.Operator)),
		sysURLFile: s.urlList(url.UserPassword(userSys, s.creds.Sys)),
	}
	for _, role := range Roles {
		files[RoleURLFile(role)] = s.urlList(url.UserPassword(role, s.creds.Roles[role]))
	}
	for name, u := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), []byte(u+"\n")); err != nil {
			return fmt.Errorf("natsrv: write %s: %w", name, err)
		}
	}
	return nil
}

func (s *Server) url(user *url.Userinfo) string { return s.urlOf(user, s.host) }

func (s *Server) urlOf(user *url.Userinfo, host string) string {
	scheme := "nats"
	if s.tls {
		scheme = "tls"
	}
	return (&url.URL{Scheme: scheme, User: user, Host: host}).String()
}

// urlList is the URL of this node and of every peer, comma-separated:
// the form nats.Connect and --nats-url take.
func (s *Server) urlList(user *url.Userinfo) string {
	urls := []string{s.url(user)}
	for _, p := range s.peers {
		urls = append(urls, s.urlOf(user, p))
	}
	return strings.Join(urls, ",")
}

// peerAddrs is Config.Servers, or the routes' hosts with this node's
// client port, without self (the address clients dial here, or a route
// host named like this server).
func peerAddrs(cfg Config, opts *server.Options, self string) []string {
	if cfg.ClusterName == "" {
		return nil
	}
	servers := cfg.Servers
	if len(servers) == 0 && opts.Port > 0 {
		for _, r := range opts.Routes {
			// This node's own route, named by its server name (nats1,
			// natter-nats-0.natter-nats), is already first.
			if h := r.Hostname(); h != opts.ServerName && !strings.HasPrefix(h, opts.ServerName+".") {
				servers = append(servers, net.JoinHostPort(h, strconv.Itoa(opts.Port)))
			}
		}
	}
	var peers []string
	for _, a := range servers {
		if a = strings.TrimSpace(a); a != "" && a != self && !slices.Contains(peers, a) {
			peers = append(peers, a)
		}
	}
	return peers
}

// DataDir is the directory of the JetStream store and the URL files.
func (s *Server) DataDir() string { return s.dataDir }

// ClientURL returns nats://host:port of the client listener, with the real
// bound port and no credentials.
func (s *Server) ClientURL() string { return s.url(nil) }

// OperatorURL returns nats://operator:PASS@host:port, the CHAT account URL
// written to DataDir/nats.url for operators and internal services.
func (s *Server) OperatorURL() string {
	return s.url(url.UserPassword(userOperator, s.creds.Operator))
}

// SystemURL returns nats://sys:PASS@host:port, a user of the SYS account
// (e.g. for `nats server report jetstream`), also written to
// DataDir/nats-sys.url.
func (s *Server) SystemURL() string {
	return s.url(url.UserPassword(userSys, s.creds.Sys))
}

// Connect opens an in-process connection (no socket) to the server as the
// internal CHAT user "natter", named name. opts are applied after the
// package's own options.
func (s *Server) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.InProcessServer(s.ns),
		nats.UserInfo(userNatter, s.creds.Natter),
		nats.Name(name),
	}, opts...)
	// The in-process pipe needs no TLS even when the client port does.
	nc, err := nats.Connect((&url.URL{Scheme: "nats", Host: s.host}).String(), all...)
	if err != nil {
		return nil, fmt.Errorf("natsrv: connect %q: %w", name, err)
	}
	return nc, nil
}

// RouteURL returns nats-route://host:port of the route listener with the
// real bound port and no credentials, or "" when the node runs alone.
func (s *Server) RouteURL() string {
	if s.routeAddr == "" {
		return ""
	}
	return (&url.URL{Scheme: "nats-route", Host: s.routeAddr}).String()
}

// Server returns the underlying NATS server, for tests and diagnostics.
func (s *Server) Server() *server.Server { return s.ns }

// Shutdown stops the server: it closes the listeners and every client
// connection, stops JetStream (flushing the file store) and waits for all
// server goroutines. It is idempotent. If ctx ends first it returns
// ErrShutdownTimeout and the shutdown goes on in the background.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		go func() {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
			close(s.done)
		}()
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrShutdownTimeout, ctx.Err())
	}
}

// stop shuts down synchronously, for Start's error paths.
func (s *Server) stop() {
	s.shutdownOnce.Do(func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		close(s.done)
	})
}

// SetStreams installs the CHAT account's subject mapping of n partition
// streams (schema.Mappings), or removes it for n ≤ 1: what the schema's
// recorded layout says (schema.ReadLayout), applied by the processes that
// run this server once they have read it, so a node started without
// Config.Streams still partitions publishes as the schema does. Clients
// connected already see it from their next read.
func (s *Server) SetStreams(n int) error {
	acc, err := s.ns.LookupAccount(accountChat)
	if err != nil {
		return fmt.Errorf("natsrv: account %s: %w", accountChat, err)
	}
	if n <= 1 {
		acc.RemoveMapping(schema.MsgWildcard)
		acc.RemoveMapping(schema.MemberWildcard)
		return nil
	}
	for src, dest := range schema.Mappings(n) {
		if err := acc.AddMapping(src, dest); err != nil {
			return fmt.Errorf("natsrv: mapping %s: %w", src, err)
		}
	}
	return nil
}
