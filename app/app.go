// Package app wires Natter's parts into one running process: the embedded
// NATS server (unless an external cluster is named), the schema, the
// history store, and the roles asked for — the WebSocket gateway with its
// fan-out worker, the presence service, the history writer, the push
// dispatcher — behind an HTTP server for /v1/ws and /healthz, with
// /metrics and /readyz on an operator listener of their own. natter serve
// runs every role; natter gateway, presence, history and pushnotify run
// one each; tests start Apps in-process.
//
// roles.go is the table of roles; each role's start function (gateway.go,
// presence.go, history.go, push.go) opens what the role needs and returns
// the part that runs it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/fanout"
	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/metrics"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/retention"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/presence"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/search"
	"github.com/natter-chat/natter/web"
)

// Config is everything an App needs.
type Config struct {
	// Roles to run; the zero value means AllRoles.
	Roles Roles
	// HTTPAddr is where /v1/ws and /healthz listen ("127.0.0.1:0" picks a port).
	HTTPAddr string
	// MetricsAddr, when set, is where /metrics, /readyz and /healthz
	// listen for the operator; off by default, never on HTTPAddr.
	MetricsAddr string
	// HTTPReadTimeout bounds reading a whole non-upgrade request (and its
	// headers), HTTPIdleTimeout how long a keep-alive connection may wait
	// for its next request; 30 s and 2 min by default. A WebSocket is not
	// bound by either: the gateway sets its own read deadline once it has
	// taken the connection over.
	HTTPReadTimeout, HTTPIdleTimeout time.Duration
	// TLSCert and TLSKey (PEM files) serve HTTPS and wss:// instead.
	TLSCert, TLSKey string
	// NATSRootCA is a PEM file of the CA that signed an external NATS's TLS
	// certificate, when the system roots do not cover it.
	NATSRootCA string
	// NATSURL names an external NATS (credentials in the URL); empty runs
	// the embedded server.
	NATSURL string
	// EraserNATSURL is the eraser role's URL on that external NATS, for
	// a process running the history role: it serves the erase API
	// (services/erase) next to the store. Empty there: this process
	// erases nothing. With the embedded NATS the eraser connects as its
	// own user by itself.
	EraserNATSURL string
	// RetentionSweep is how often the retention sweeper (next to the
	// erase service) removes what conversations' retention_days no
	// longer keep; 1 minute by default.
	RetentionSweep time.Duration
	// RetentionNow, when set, is the retention sweeper's clock (tests
	// move it days ahead); time.Now otherwise.
	RetentionNow func() time.Time
	// Embedded configures the embedded NATS server when NATSURL is empty.
	Embedded natsrv.Config
	// Auth verifies client tokens (gateway role).
	Auth auth.Config
	// Schema sizes the streams and buckets. Only a process with the
	// embedded server applies it; a role against an external NATS creates
	// and changes nothing of the schema.
	Schema schema.Config
	// SchemaWait is how long a role against an external NATS waits for
	// the operator to create the streams, buckets and consumers it uses
	// before it fails saying so; 2 min by default.
	SchemaWait time.Duration
	// Retention configures the CHAT trimmer, which runs with the embedded
	// server; its Window defaults to Schema.HotWindow.
	Retention retention.Config
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
	// Tracing turns OpenTelemetry tracing on; off by default.
	Tracing TracingConfig
	// Events tunes the events role (events for bots, webhooks).
	Events EventsConfig
	// Attachments stores the files messages reference (gateway role);
	// off when it names no store.
	Attachments AttachmentsConfig
	// Search locates the search index of the indexer role.
	Search SearchConfig
	// GatewayID names this gateway in presence keys; random by default.
	GatewayID string
	// Web serves the chat web app (package web) at "/".
	Web bool
	// DevTokens, when set, answers GET /dev/token?user=u with a token from
	// it: anyone may sign in as anyone, so only for --dev servers.
	DevTokens func(user string) (string, error)
	// Pprof, when set, serves net/http/pprof on this loopback address.
	Pprof string
	// GCPercent, when positive, is set as the process's GC target
	// (debug.SetGCPercent) by Start; 0 leaves the runtime's (GOGC).
	GCPercent int
	// Logger; slog.Default by default.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Roles == (Roles{}) {
		c.Roles = AllRoles
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.HTTPReadTimeout <= 0 {
		c.HTTPReadTimeout = 30 * time.Second
	}
	if c.HTTPIdleTimeout <= 0 {
		c.HTTPIdleTimeout = 2 * time.Minute
	}
	return c
}

// App is a running Natter process.
//
// The App owns what it shares between roles: the embedded NATS server,
// every NATS connection (opened by connect, so /readyz can check them,
// and drained once every part stopped), the history store when it opened
// it, and the HTTP server. Each role owns the rest of what it opens and
// closes it in its part's close.
type App struct {
	cfg        Config
	log        *slog.Logger
	nats       *natsrv.Server // nil with an external NATS
	connsMu    sync.Mutex
	conns      []*nats.Conn
	natsStats  *metrics.NATSConns
	storeStats atomic.Pointer[metrics.Store] // set once observed; nil without a store
	store      history.Store                 // the history store, if this process holds one
	closeStore func() error                  // nil when the caller owns the store
	obs        *observer
	tp         trace.TracerProvider        // nil: tracing is off
	closeTP    func(context.Context) error // nil when the caller owns tp
	gateway    *gateway.Server
	push       *pushnotify.Dispatcher
	indexer    *search.Indexer
	parts      []*part // started parts, in start order
	http       *http.Server
	listener   net.Listener
	ready      atomic.Bool
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	once       sync.Once
	shutErr    error
	// relayout is closed when the App stopped because the message
	// streams were re-partitioned (relayout.go).
	relayout     chan struct{}
	relayoutOnce sync.Once
}

// Start brings the configured roles up and returns once the App takes
// traffic. On error, whatever had started is shut down again.
func Start(ctx context.Context, cfg Config) (a *App, err error) {
	cfg = cfg.withDefaults()
	if cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a = &App{cfg: cfg, log: cfg.Logger, cancel: cancel, relayout: make(chan struct{})}
	a.natsStats = metrics.NewNATSConns(a.natsConns)
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = a.Shutdown(sctx)
		}
	}()
	// The client port is taken first: a role may wait minutes for the
	// operator's schema, and a port chosen for it must not go to another
	// process meanwhile. Nothing is served (and /healthz answers nothing)
	// until the roles run.
	if a.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return a, fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	if a.tp, a.closeTP, err = cfg.Tracing.tracerProvider(ctx, cfg.Roles); err != nil {
		return a, err
	}
	if err := a.startNATS(ctx); err != nil {
		return a, err
	}
	if a.store, a.closeStore, err = OpenHistory(ctx, cfg.History, cfg.Logger); err != nil {
		return a, err
	}
	a.store = a.meteredStore(a.store)
	if cfg.Roles.History && a.store == nil {
		return a, ErrNoHistoryStore
	}
	mux, err := a.baseMux(ctx)
	if err != nil {
		return a, err
	}
	trim, err := a.startRetention(ctx)
	if err != nil {
		return a, fmt.Errorf("start retention: %w", err)
	}
	a.runPart(runCtx, trim)
	if a.nats != nil {
		_, js, err := a.connect(ctx, "", "natter-service-users")
		if err != nil {
			return a, err
		}
		a.runPart(runCtx, &part{name: "service-users", run: func(ctx context.Context) error {
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = syncServiceConsumers(ctx, js, a.log)
			}()
			defer func() { <-done }()
			return syncServiceUsers(ctx, a.nats, js, a.log)
		}})
	}
	for _, r := range a.roles() {
		if !r.on {
			continue
		}
		p, err := r.start(ctx, mux)
		if err != nil {
			return a, fmt.Errorf("start %s: %w", r.name, err)
		}
		a.runPart(runCtx, p)
	}
	follow, err := a.startLayoutFollow(ctx)
	if err != nil {
		return a, fmt.Errorf("follow the message streams' layout: %w", err)
	}
	a.runPart(runCtx, follow)
	if err := a.serveHTTP(mux); err != nil {
		return a, err
	}
	if err := a.serveMetrics(); err != nil {
		return a, err
	}
	a.ready.Store(true)
	a.log.Info("natter is ready", "http", a.listener.Addr().String(), "metrics", a.MetricsAddr(), "nats", a.NATSClientURL(),
		"gateway", cfg.Roles.Gateway, "presence", cfg.Roles.Presence, "history", cfg.Roles.History)
	return a, nil
}

// baseMux is the HTTP routes every process serves, whatever its roles.
func (a *App) baseMux(ctx context.Context) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	if err := a.observe(ctx); err != nil {
		return nil, err
	}
	if a.cfg.Web {
		origins, err := a.mediaOrigins(ctx)
		if err != nil {
			return nil, err
		}
		mux.Handle("GET /", web.Handler(origins...))
	}
	if a.cfg.DevTokens != nil {
		mux.Handle("GET /dev/token", web.DevTokenHandler(a.cfg.DevTokens))
	}
	return mux, nil
}

// serveHTTP serves mux on the listener Start took until Shutdown.
func (a *App) serveHTTP(mux *http.ServeMux) error {
	// No WriteTimeout: it would stay on a hijacked WebSocket and cut long
	// pushes; the gateway bounds its writes itself.
	a.http = &http.Server{Handler: mux,
		ReadHeaderTimeout: min(10*time.Second, a.cfg.HTTPReadTimeout),
		ReadTimeout:       a.cfg.HTTPReadTimeout, IdleTimeout: a.cfg.HTTPIdleTimeout,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		var err error
		if a.cfg.TLSCert != "" {
			err = a.http.ServeTLS(a.listener, a.cfg.TLSCert, a.cfg.TLSKey)
		} else {
			err = a.http.Serve(a.listener)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
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

// NATSClientURL is the NATS URL without credentials: the external URL
// list has its passwords redacted, since this is what gets logged.
func (a *App) NATSClientURL() string {
	if a.nats != nil {
		return a.nats.ClientURL()
	}
	return natsrv.RedactURLs(a.cfg.NATSURL)
}

// Gateway is the WebSocket gateway, nil without the gateway role.
func (a *App) Gateway() *gateway.Server { return a.gateway }

// Push is the push dispatcher, nil when push does not run; its Counters
// are published on /metrics.
func (a *App) Push() *pushnotify.Dispatcher { return a.push }

// Shutdown stops taking traffic, closes every WebSocket with 1001, stops
// the parts of every role and closes what they opened, then drains the
// NATS connections and closes the history store (when the App opened it)
// and the embedded server. When it returns nothing of the App runs. It is
// idempotent.
func (a *App) Shutdown(ctx context.Context) error {
	a.once.Do(func() {
		a.ready.Store(false)
		var errs []error
		start, phase := time.Now(), time.Now()
		took := func(what string) {
			a.log.Debug("shutdown step done", "step", what, "took", time.Since(phase), "total", time.Since(start))
			phase = time.Now()
		}
		if a.gateway != nil {
			errs = append(errs, a.gateway.Shutdown(ctx))
			took("gateway")
		}
		if a.http != nil {
			errs = append(errs, a.http.Shutdown(ctx))
		} else if a.listener != nil {
			_ = a.listener.Close() // taken, never served: Start failed
		}
		errs = append(errs, a.shutdownMetrics(ctx))
		a.cancel()
		a.wg.Wait()
		took("parts stopped")
		for i := len(a.parts) - 1; i >= 0; i-- {
			if c := a.parts[i].close; c != nil {
				errs = append(errs, c())
			}
		}
		took("parts closed")
		a.closeConns(ctx)
		took("NATS connections drained")
		if a.closeStore != nil {
			errs = append(errs, a.closeStore())
			took("store closed")
		}
		if a.nats != nil {
			errs = append(errs, a.nats.Shutdown(ctx))
			took("embedded NATS server")
		}
		if a.closeTP != nil {
			// Last: flushes the spans of everything that stopped.
			errs = append(errs, a.closeTP(ctx))
		}
		a.shutErr = errors.Join(errs...)
	})
	return a.shutErr
}
