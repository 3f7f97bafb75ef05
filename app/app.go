// Package app wires Natter's parts into one running process: the embedded
// NATS server (unless an external cluster is named), the schema, the
// fan-out worker and the WebSocket gateway behind an HTTP server. natter
// serve and natter gateway both run an App; tests start one in-process.
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

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/fanout"
	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/presence"
	"github.com/natter-chat/natter/protocol"
)

// randomID returns prefix followed by 10 random base32 characters: a NATS
// subject token.
func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Config is everything an App needs.
type Config struct {
	// HTTPAddr is where /v1/ws and /healthz listen ("127.0.0.1:0" picks a port).
	HTTPAddr string
	// NATSURL names an external NATS (with credentials in the URL, or
	// NATSCreds); empty runs the embedded server.
	NATSURL string
	// Embedded configures the embedded NATS server when NATSURL is empty.
	Embedded natsrv.Config
	// Auth verifies client tokens.
	Auth auth.Config
	// Schema sizes the streams and buckets.
	Schema schema.Config
	// Gateway, Conversations, Fanout and Presence tune those parts.
	Gateway       gateway.Config
	Conversations conversation.Config
	Fanout        fanout.Config
	Presence      presence.ServiceConfig
	// GatewayID names this gateway in presence keys; random by default.
	GatewayID string
	// NoPresenceService leaves the presence service to another process
	// (run one per cluster).
	NoPresenceService bool
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
	http     *http.Server
	listener net.Listener
	ready    atomic.Bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
	shutErr  error
}

// Start brings every part up and returns once the App takes traffic.
func Start(ctx context.Context, cfg Config) (a *App, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a = &App{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = a.Shutdown(sctx)
		}
	}()
	verifier, err := auth.New(cfg.Auth)
	if err != nil {
		return a, err
	}
	if cfg.NATSURL == "" {
		emb := cfg.Embedded
		if emb.Logger == nil {
			emb.Logger = cfg.Logger
		}
		if a.nats, err = natsrv.Start(ctx, emb); err != nil {
			return a, fmt.Errorf("start embedded NATS: %w", err)
		}
	}
	gwNC, err := a.connect("natter-gateway")
	if err != nil {
		return a, err
	}
	fanNC, err := a.connect("natter-fanout")
	if err != nil {
		return a, err
	}
	gwJS, err := jetstream.New(gwNC)
	if err != nil {
		return a, err
	}
	fanJS, err := jetstream.New(fanNC)
	if err != nil {
		return a, err
	}
	if err := schema.Ensure(ctx, gwJS, cfg.Schema); err != nil {
		return a, err
	}
	convCfg := cfg.Conversations
	if convCfg.Logger == nil {
		convCfg.Logger = cfg.Logger
	}
	convs, err := conversation.New(ctx, convCfg, gwJS)
	if err != nil {
		return a, err
	}
	stream, err := history.NewStream(ctx, gwJS)
	if err != nil {
		return a, err
	}
	fanConvs, err := conversation.New(ctx, convCfg, fanJS)
	if err != nil {
		return a, err
	}
	fanStream, err := history.NewStream(ctx, fanJS)
	if err != nil {
		return a, err
	}
	fanCfg := cfg.Fanout
	if fanCfg.Logger == nil {
		fanCfg.Logger = cfg.Logger
	}
	fan := fanout.New(fanCfg, fanNC, fanJS, fanConvs, fanStream)

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
	tracker, err := presence.NewTracker(ctx, presence.TrackerConfig{Gateway: gatewayID, LeaseTTL: 2 * heartbeat, Logger: cfg.Logger}, gwJS)
	if err != nil {
		return a, err
	}
	a.tracker = tracker
	presenceKV, err := gwJS.KeyValue(ctx, schema.BucketPresence)
	if err != nil {
		return a, err
	}
	if a.gateway, err = gateway.New(gwCfg, gateway.Deps{
		Verifier: verifier, NC: gwNC, JS: gwJS, Convs: convs, Stream: stream,
		Presence: tracker, PresenceKV: presenceKV,
	}); err != nil {
		return a, err
	}
	var presenceSvc *presence.Service
	if !cfg.NoPresenceService {
		presCfg := cfg.Presence
		if presCfg.Logger == nil {
			presCfg.Logger = cfg.Logger
		}
		if presenceSvc, err = presence.NewService(ctx, presCfg, fanNC, fanJS, fanConvs); err != nil {
			return a, err
		}
	}

	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := fan.Run(runCtx); err != nil {
			a.log.Error("fan-out stopped", "err", err)
		}
	}()

	if presenceSvc != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := presenceSvc.Run(runCtx); err != nil {
				a.log.Error("presence service stopped", "err", err)
			}
		}()
	}

	mux := http.NewServeMux()
	mux.Handle("GET /v1/ws", a.gateway)
	mux.HandleFunc("GET /healthz", a.healthz)
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
		if err := a.http.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	a.ready.Store(true)
	a.log.Info("natter is ready", "http", a.listener.Addr().String(), "nats", a.NATSClientURL())
	return a, nil
}

func (a *App) connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	var nc *nats.Conn
	var err error
	if a.nats != nil {
		nc, err = a.nats.Connect(name, opts...)
	} else {
		nc, err = nats.Connect(a.cfg.NATSURL, append(opts, nats.Name(name))...)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to NATS as %s: %w", name, err)
	}
	a.conns = append(a.conns, nc)
	return nc, nil
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
func (a *App) WebSocketURL() string { return "ws://" + a.HTTPAddr() + "/v1/ws" }

// NATS is the embedded server, nil when an external NATS is used.
func (a *App) NATS() *natsrv.Server { return a.nats }

// NATSClientURL is the NATS URL without credentials.
func (a *App) NATSClientURL() string {
	if a.nats != nil {
		return a.nats.ClientURL()
	}
	return a.cfg.NATSURL
}

// Gateway is the WebSocket gateway.
func (a *App) Gateway() *gateway.Server { return a.gateway }

// Shutdown stops taking traffic, closes every WebSocket with 1001, stops
// the fan-out, closes the NATS connections and the embedded server. When it
// returns nothing of the App runs. It is idempotent.
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
		for _, nc := range a.conns {
			_ = nc.Drain()
		}
		for _, nc := range a.conns {
			for !nc.IsClosed() && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			nc.Close()
		}
		if a.nats != nil {
			errs = append(errs, a.nats.Shutdown(ctx))
		}
		a.shutErr = errors.Join(errs...)
	})
	return a.shutErr
}
