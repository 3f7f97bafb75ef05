// Package app wires Natter's parts into one running process: the embedded
// NATS server (unless an external cluster is named), the schema, and the
// roles asked for — the WebSocket gateway with its fan-out worker, the
// presence service — behind an HTTP server for /v1/ws and /healthz.
// natter serve runs every role; natter gateway and natter presence run one
// each; tests start Apps in-process.
package app

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/fanout"
	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/presence"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/web"
)

// Roles says which parts an App runs.
type Roles struct {
	// Gateway serves WebSocket clients and runs a fan-out worker (the
	// workers of all gateways share one pinned consumer).
	Gateway bool
	// Presence runs the presence service: one per cluster.
	Presence bool
	// History copies the CHAT stream into the history store and serves
	// the history API (chat.api.history.*).
	History bool
	// Push runs the push notification dispatcher (one per cluster is
	// enough; more share its consumer); it starts only when a provider is
	// configured.
	Push bool
}

// AllRoles is what natter serve runs.
var AllRoles = Roles{Gateway: true, Presence: true, History: true, Push: true}

// HistoryConfig says where the history store is.
type HistoryConfig struct {
	// Store is a store the caller opened (and closes): a scyllastore, or
	// one shared by Apps in a test. It wins over Dir.
	Store history.Store
	// Dir opens the embedded store (localstore) there; the App closes it.
	Dir string
	// NoSync commits the embedded store without fsync (tests only).
	NoSync bool
}

// Config is everything an App needs.
type Config struct {
	// Roles to run; the zero value means AllRoles.
	Roles Roles
	// HTTPAddr is where /v1/ws and /healthz listen ("127.0.0.1:0" picks a port).
	HTTPAddr string
	// TLSCert and TLSKey (PEM files) serve HTTPS and wss:// instead.
	TLSCert, TLSKey string
	// NATSRootCA is a PEM file of the CA that signed an external NATS's TLS
	// certificate, when the system roots do not cover it.
	NATSRootCA string
	// NATSURL names an external NATS (credentials in the URL); empty runs
	// the embedded server.
	NATSURL string
	// Embedded configures the embedded NATS server when NATSURL is empty.
	Embedded natsrv.Config
	// Auth verifies client tokens (gateway role).
	Auth auth.Config
	// Schema sizes the streams and buckets.
	Schema schema.Config
	// Gateway, Conversations, Fanout and Presence tune those parts.
	Gateway       gateway.Config
	Conversations conversation.Config
	Fanout        fanout.Config
	Presence      presence.ServiceConfig
	// History locates the history store. A gateway without one reads
	// through the history API of the process that has it.
	History HistoryConfig
	// Push configures the push providers and dispatcher.
	Push PushConfig
	// GatewayID names this gateway in presence keys; random by default.
	GatewayID string
	// Web serves the chat web app (package web) at "/".
	Web bool
	// DevTokens, when set, answers GET /dev/token?user=u with a token from
	// it: anyone may sign in as anyone, so only for --dev servers.
	DevTokens func(user string) (string, error)
	// Pprof, when set, serves net/http/pprof on this loopback address.
	Pprof string
	// Logger; slog.Default by default.
	Logger *slog.Logger
}

// App is a running Natter process.
type App struct {
	cfg      Config
	log      *slog.Logger
	nats     *natsrv.Server // nil with an external NATS
	conns    []*nats.Conn
	gateway  *gateway.Server
	tracker  *presence.Tracker
	store    history.Store // the history store, if this process holds one
	ownStore bool          // opened here, so closed here
	api      micro.Service
	push     *pushnotify.Dispatcher
	obs      *observer
	http     *http.Server
	listener net.Listener
	ready    atomic.Bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
	shutErr  error
}

// Start brings the configured roles up and returns once the App takes
// traffic.
func Start(ctx context.Context, cfg Config) (a *App, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Roles == (Roles{}) {
		cfg.Roles = AllRoles
	}
	a = &App{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = a.Shutdown(sctx)
		}
	}()
	if cfg.NATSURL == "" {
		emb := cfg.Embedded
		if emb.Logger == nil {
			emb.Logger = cfg.Logger
		}
		if a.nats, err = natsrv.Start(ctx, emb); err != nil {
			return a, fmt.Errorf("start embedded NATS: %w", err)
		}
	}
	// The first connection ensures the schema for everyone.
	_, js, err := a.connect("natter-schema")
	if err != nil {
		return a, err
	}
	if err := ensureSchema(ctx, js, cfg.Schema, a.log); err != nil {
		return a, err
	}
	switch {
	case cfg.History.Store != nil:
		a.store = cfg.History.Store
	case cfg.History.Dir != "":
		if a.store, err = localstore.New(localstore.Config{Dir: cfg.History.Dir, NoSync: cfg.History.NoSync, Logger: cfg.Logger}); err != nil {
			return a, fmt.Errorf("open history store: %w", err)
		}
		a.ownStore = true
	case cfg.Roles.History:
		return a, errors.New("the history role needs a history store (History.Dir or History.Store)")
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	if err := a.observe(mux); err != nil {
		return a, err
	}
	if cfg.Web {
		mux.Handle("GET /", web.Handler())
	}
	if cfg.DevTokens != nil {
		mux.Handle("GET /dev/token", web.DevTokenHandler(cfg.DevTokens))
	}
	if cfg.Roles.Gateway {
		if err := a.startGateway(ctx, runCtx, mux); err != nil {
			return a, err
		}
	}
	if cfg.Roles.Presence {
		if err := a.startPresence(ctx, runCtx); err != nil {
			return a, err
		}
	}
	if cfg.Roles.History {
		if err := a.startHistory(ctx, runCtx); err != nil {
			return a, err
		}
	}
	if cfg.Roles.Push {
		if err := a.startPush(ctx, runCtx); err != nil {
			return a, err
		}
	}
	addr := cfg.HTTPAddr
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	if a.listener, err = net.Listen("tcp", addr); err != nil {
		return a, fmt.Errorf("listen %s: %w", addr, err)
	}
	a.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		var err error
		if cfg.TLSCert != "" {
			err = a.http.ServeTLS(a.listener, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = a.http.Serve(a.listener)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	if cfg.Pprof != "" {
		if err := a.startPprof(runCtx, cfg.Pprof); err != nil {
			return a, err
		}
	}
	a.ready.Store(true)
	a.log.Info("natter is ready", "http", a.listener.Addr().String(), "nats", a.NATSClientURL(),
		"gateway", cfg.Roles.Gateway, "presence", cfg.Roles.Presence, "history", cfg.Roles.History)
	return a, nil
}

// startGateway runs the WebSocket gateway and a fan-out worker, each on a
// NATS connection of its own so deliveries never queue behind requests.
func (a *App) startGateway(ctx, runCtx context.Context, mux *http.ServeMux) error {
	cfg := a.cfg
	verifier, err := auth.New(cfg.Auth)
	if err != nil {
		return err
	}
	// The JWKS reloader, if any, stops with the other background work.
	a.run(runCtx, "jwks reloader", func(ctx context.Context) error { <-ctx.Done(); return verifier.Close() })
	gwNC, gwJS, err := a.connect("natter-gateway")
	if err != nil {
		return err
	}
	fanNC, fanJS, err := a.connect("natter-fanout")
	if err != nil {
		return err
	}
	convs, msgs, err := a.readers(ctx, gwNC, gwJS)
	if err != nil {
		return err
	}
	fanConvs, fanMsgs, err := a.readers(ctx, fanNC, fanJS)
	if err != nil {
		return err
	}
	fanCfg := cfg.Fanout
	if fanCfg.Logger == nil {
		fanCfg.Logger = cfg.Logger
	}
	fan := fanout.New(fanCfg, fanNC, fanJS, fanConvs, fanMsgs)

	gwCfg := cfg.Gateway
	if gwCfg.Logger == nil {
		gwCfg.Logger = cfg.Logger
	}
	heartbeat := gwCfg.Heartbeat
	if heartbeat <= 0 {
		heartbeat = protocol.DefaultHeartbeatSecs * time.Second
	}
	gatewayID := cfg.GatewayID
	if gatewayID == "" {
		gatewayID = randomID("gw")
	}
	if a.tracker, err = presence.NewTracker(ctx, presence.TrackerConfig{Gateway: gatewayID, LeaseTTL: 2 * heartbeat, Logger: cfg.Logger}, gwJS); err != nil {
		return err
	}
	presenceKV, err := gwJS.KeyValue(ctx, schema.BucketPresence)
	if err != nil {
		return err
	}
	if a.gateway, err = gateway.New(gwCfg, gateway.Deps{
		Verifier: verifier, NC: gwNC, JS: gwJS, Convs: convs, Messages: msgs,
		Presence: a.tracker, PresenceKV: presenceKV, Metrics: a.gatewayMetrics(),
	}); err != nil {
		return err
	}
	a.run(runCtx, "fan-out", fan.Run)
	mux.Handle("GET /v1/ws", a.gateway)
	return nil
}

func (a *App) startPresence(ctx, runCtx context.Context) error {
	nc, js, err := a.connect("natter-presence")
	if err != nil {
		return err
	}
	convs, err := a.conversations(ctx, js)
	if err != nil {
		return err
	}
	pcfg := a.cfg.Presence
	if pcfg.Logger == nil {
		pcfg.Logger = a.cfg.Logger
	}
	svc, err := presence.NewService(ctx, pcfg, nc, js, convs)
	if err != nil {
		return err
	}
	a.run(runCtx, "presence service", svc.Run)
	return nil
}

// run keeps fn running in the background until Shutdown.
func (a *App) run(ctx context.Context, name string, fn func(context.Context) error) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := fn(ctx); err != nil {
			a.log.Error(name+" stopped", "err", err)
		}
	}()
}

// startHistory runs the history writer and serves the history API.
func (a *App) startHistory(ctx, runCtx context.Context) error {
	nc, js, err := a.connect("natter-history")
	if err != nil {
		return err
	}
	_, pages, err := a.readers(ctx, nc, js)
	if err != nil {
		return err
	}
	if a.api, err = history.StartAPI(nc, pages, 10*time.Second); err != nil {
		return err
	}
	wcfg := history.WriterConfig{Logger: a.cfg.Logger}
	if a.cfg.History.Store == nil {
		wcfg.SingleWriter = localstore.Name(a.cfg.History.Dir) // an embedded store: one writer per cluster
	}
	w := history.NewWriter(wcfg, js, a.store)
	if err := w.Claim(ctx); err != nil {
		return err
	}
	a.run(runCtx, "history writer", w.Run)
	return nil
}

func (a *App) conversations(ctx context.Context, js jetstream.JetStream) (*conversation.Store, error) {
	ccfg := a.cfg.Conversations
	if ccfg.Logger == nil {
		ccfg.Logger = a.cfg.Logger
	}
	return conversation.New(ctx, ccfg, js)
}

// readers returns the conversation store and where messages are read:
// the history Reader over this process's store and the stream, or the
// history API when the store lives in another process.
func (a *App) readers(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (*conversation.Store, history.Pages, error) {
	convs, err := a.conversations(ctx, js)
	if err != nil {
		return nil, nil, err
	}
	if a.store == nil {
		return convs, history.NewRemote(nc, 10*time.Second), nil
	}
	stream, err := history.NewStream(ctx, js)
	if err != nil {
		return nil, nil, err
	}
	reader, err := history.NewReader(ctx, js, a.store, stream)
	if err != nil {
		return nil, nil, err
	}
	return convs, reader, nil
}

func (a *App) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	var nc *nats.Conn
	var err error
	if a.nats != nil {
		nc, err = a.nats.Connect(name, opts...)
	} else {
		if a.cfg.NATSRootCA != "" {
			opts = append(opts, nats.RootCAs(a.cfg.NATSRootCA))
		}
		nc, err = nats.Connect(a.cfg.NATSURL, append(opts, nats.Name(name))...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS as %s: %w", name, err)
	}
	a.conns = append(a.conns, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	return nc, js, nil
}

// randomID returns prefix followed by 13 random base32 characters: a NATS
// subject token.
func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	if !a.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// HTTPAddr is the address the HTTP server listens on.
func (a *App) HTTPAddr() string { return a.listener.Addr().String() }

// WebSocketURL is the ws:// URL clients connect to.
func (a *App) WebSocketURL() string {
	if a.cfg.TLSCert != "" {
		return "wss://" + a.HTTPAddr() + "/v1/ws"
	}
	return "ws://" + a.HTTPAddr() + "/v1/ws"
}

// NATS is the embedded server, nil when an external NATS is used.
func (a *App) NATS() *natsrv.Server { return a.nats }

// NATSClientURL is the NATS URL without credentials.
func (a *App) NATSClientURL() string {
	if a.nats != nil {
		return a.nats.ClientURL()
	}
	return a.cfg.NATSURL
}

// Gateway is the WebSocket gateway, nil without the gateway role.
func (a *App) Gateway() *gateway.Server { return a.gateway }

// Shutdown stops taking traffic, closes every WebSocket with 1001, stops
// the background roles, closes the NATS connections and the embedded
// server. When it returns nothing of the App runs. It is idempotent.
func (a *App) Shutdown(ctx context.Context) error {
	a.once.Do(func() {
		a.ready.Store(false)
		var errs []error
		if a.gateway != nil {
			errs = append(errs, a.gateway.Shutdown(ctx))
		} else if a.tracker != nil {
			errs = append(errs, a.tracker.Close(ctx))
		}
		if a.http != nil {
			errs = append(errs, a.http.Shutdown(ctx))
		}
		if a.cancel != nil {
			a.cancel()
		}
		a.wg.Wait()
		if a.api != nil {
			errs = append(errs, a.api.Stop())
		}
		for _, nc := range a.conns {
			_ = nc.Drain()
		}
		for _, nc := range a.conns {
			for !nc.IsClosed() && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			nc.Close()
		}
		if a.ownStore {
			errs = append(errs, a.store.Close())
		}
		if a.nats != nil {
			errs = append(errs, a.nats.Shutdown(ctx))
		}
		a.shutErr = errors.Join(errs...)
	})
	return a.shutErr
}
