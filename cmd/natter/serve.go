package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/gateway"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/search/opensearch"
)

// devSecretFile holds the JWT secret --dev generated, so that tokens stay
// valid across restarts and `natter token --data` can sign with it.
const devSecretFile = "dev-jwt-secret"

// roles maps each command that runs a server to the parts it runs.
var roles = map[string]app.Roles{
	"serve":      app.AllRoles,
	"gateway":    {Gateway: true},
	"presence":   {Presence: true},
	"history":    {History: true},
	"pushnotify": {Push: true},
	"events":     {Events: true},
	"indexer":    {Indexer: true},
}

// gcPercentFor is the GC percent to set: 0 (leave the runtime's) when the
// process has no gateway, the flag is 0, or GOGC is set in the
// environment.
func gcPercentFor(r app.Roles, flagValue int, envGOGC string) int {
	if !r.Gateway || envGOGC != "" {
		return 0
	}
	return flagValue
}

// serveConfig parses the flags of serve, or of a single role run against
// an external NATS.
func serveConfig(args []string, stderr io.Writer, name string) (app.Config, error) {
	gatewayOnly := name != "serve"
	fs := flag.NewFlagSet("natter "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cql := addCQLFlags(fs, true)
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP listen address: /v1/ws and /healthz")
	metricsAddr := fs.String("metrics", "", "operator listen address for /metrics, /readyz and /healthz (e.g. 127.0.0.1:9090); off by default, never the client port")
	tlsCert := fs.String("tls-cert", "", "PEM certificate: serve HTTPS and wss:// (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	natsTLSCert := fs.String("nats-tls-cert", "", "PEM certificate: the embedded NATS client port requires TLS (serve only; with --nats-tls-key)")
	natsTLSKey := fs.String("nats-tls-key", "", "PEM private key of --nats-tls-cert")
	natsCA := fs.String("nats-ca", "", "PEM CA file to trust for a tls:// --nats-url")
	natsAddr := fs.String("nats", "127.0.0.1:4222", "embedded NATS client listen address (serve only)")
	eraserURL := fs.String("eraser-nats-url", os.Getenv("NATTER_ERASER_NATS_URL"), "natter history against an external NATS: the eraser role's NATS URL (natter credentials --user eraser), to serve the erase API next to the store (env NATTER_ERASER_NATS_URL)")
	retentionSweep := fs.Duration("retention-sweep", time.Minute, "how often the history role (with the erase service) removes what conversations' retention_days no longer keep, from the store, CHAT, the search index and attachments")
	natsURL := fs.String("nats-url", os.Getenv("NATTER_NATS_URL"), "external NATS URL with credentials, or a comma-separated list of them (one per cluster node), e.g. the content of <data>/nats.url (roles other than serve; env NATTER_NATS_URL)")
	replicas := fs.Int("replicas", 0, "replicas of the streams and KV buckets: 1, or 3 in a cluster; 0 keeps the existing ones, else picks 3 when the NATS URL list or cluster names ≥ 3 servers")
	dataDir := fs.String("data", "./data", "data directory: JetStream store, credentials, the embedded history store")
	secret := fs.String("jwt-secret", "", "HS256 secret for client tokens (default: env NATTER_JWT_SECRET)")
	pubKey := fs.String("jwt-public-key", "", "PEM public key file: accept RS256/EdDSA tokens instead of HS256")
	jwks := fs.String("jwt-jwks", "", "JWKS file (RFC 7517: RSA, Ed25519, oct keys selected by kid), re-read when it changes; wins over --jwt-public-key and --jwt-secret")
	leeway := fs.Duration("jwt-leeway", 30*time.Second, "clock skew tolerated on a token's exp, nbf and iat")
	audience := fs.String("jwt-audience", "", "when set, tokens must carry this aud")
	issuer := fs.String("jwt-issuer", "", "when set, tokens must carry this iss")
	dev := fs.Bool("dev", false, "development mode: generate a JWT secret when none is given")
	devTokenTTL := fs.Duration("dev-token-ttl", 24*time.Hour, "lifetime of the tokens GET /dev/token hands out (--dev only); the web app refreshes them before they expire")
	syncMode := fs.String("sync", "interval", `JetStream fsync: "interval" (page cache, fsync every 2 min) or "always" (fsync per write)`)
	hotWindow := fs.Duration("hot-window", 7*24*time.Hour, "how long messages stay in the CHAT stream at least (longer while the history store lacks them); serve sets it, a role uses it only to create a missing stream")
	dedupe := fs.Duration("dedupe-window", 10*time.Minute, "how long a (sender, client_id) is remembered for idempotent sends; like --hot-window, a stream setting")
	fastDedupe := fs.Duration("dedupe-fast-window", 0, "how long JetStream itself remembers each send's Nats-Msg-Id, in memory on every replica (about 160 B per message); 0: the whole --dedupe-window. Shorter (e.g. 2m) bounds the memory once every client marks its resends: a repeat marked \"resend\" is caught over the whole --dedupe-window, an unmarked one only within this")
	trimEvery := fs.Duration("trim-interval", time.Minute, "how often serve's embedded server trims CHAT (at least 4 times per hot window)")
	partitions := fs.Int("partitions", 0, partitionsHelp+"; serve sets it with its embedded server only")
	streams := fs.Int("streams", 0, streamsHelp+"; serve sets it with its embedded server only")
	heartbeat := fs.Duration("heartbeat", 20*time.Second, "heartbeat interval announced to clients; silence for twice as long disconnects")
	burst := fs.Int("rate-burst", 200, "per-connection request burst")
	rate := fs.Float64("rate", 100, "per-connection sustained requests per second")
	addedPerHour := fs.Int("max-added-per-hour", 100, "how many times others may add one user to groups per hour")
	maxPerUser := fs.Int("max-conns-per-user", 32, "open connections one user may hold; one more is closed with 1008")
	deliveredDelay := fs.Duration("delivered-delay", time.Second, "how long the gateway gathers a user's delivered reports in a conversation before it writes the marker and tells the members (one write per user, conversation and delay)")
	maxPerIP := fs.Int("max-conns-per-ip", 10_000, "open connections from one address; one more gets HTTP 429")
	origins := fs.String("allowed-origins", "", `comma-separated browser origins (https://app.example.com) allowed to open WebSockets besides the same origin, or "*"`)
	trustedProxies := fs.String("trusted-proxies", "", "comma-separated CIDR prefixes or addresses of reverse proxies whose --client-ip-header names the client for the per-IP limits (e.g. 10.0.0.0/8); none by default: the socket's address counts")
	clientIPHeader := fs.String("client-ip-header", gateway.DefaultClientIPHeader, "header a trusted proxy puts the client address in; its right-most hop that is not a trusted proxy counts")
	// Off by default (issue 19): at 50 a gateway holds 19,000 idle
	// connections at 11.3 KiB each instead of 12.9, but in the all-in-one
	// process it cost ~6 % more CPU per message and a higher p99, and its
	// cost on a gateway alone is not measured yet (docs/benchmarks.md,
	// "issue 19: memory per idle connection").
	gcPercent := fs.Int("gc-percent", 0, "Go GC target percent (as GOGC) of a process with the gateway role: below 100 trades some GC CPU for less memory per idle connection (50: about 9.1 KiB per idle connection on a natter gateway instead of 10.3); 0 keeps the runtime's; the GOGC environment variable wins")
	otlpEndpoint := fs.String("otlp-endpoint", "", "OpenTelemetry collector to export traces to over OTLP/HTTP (http://collector:4318); tracing is off without it or the OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_TRACES_EXPORTER environment")
	traceSample := fs.Float64("trace-sample", 1, "share of traces recorded when tracing is on (0 to 1), where no parent span decided: a sampled parent is always followed")
	testTTL := fs.Duration("test-ttl", 0, "one more disappearing-messages ttl clients may set besides 1h, 24h, 168h and 2160h, in whole seconds (e.g. 2s): for tests and trials, off by default; set it on every gateway alike")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060); off by default")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "json", "json or text")
	pushConfig := pushFlags(fs)
	attachConfig := attachmentFlags(fs)
	openSearchURL := fs.String("opensearch-url", "", "keep the search index in OpenSearch 2.19 at this URL (http://user:pass@host:9200) instead of the embedded one under --data (indexer role)")
	openSearchIndex := fs.String("opensearch-index", "natter-messages", "the OpenSearch index of --opensearch-url")
	searchOn := new(bool)
	if name == "serve" {
		searchOn = fs.Bool("search", true, "run the search indexer and the search API in this process (full-text indexing costs CPU per message: about a third of serve's at 2,000 msg/s on 2 cores, docs/benchmarks.md); false: search answers unavailable, or run natter indexer elsewhere")
	}
	noProvider := new(bool)
	if name == "pushnotify" {
		noProvider = fs.Bool("no-provider", false, "run without a push provider: acknowledge the pushnotify consumer's messages unsent, for a cluster without push notifications (natter serve does this by itself); every pushnotify process of a cluster needs the same providers")
	}
	if err := fs.Parse(args); err != nil {
		return app.Config{}, err
	}
	if fs.NArg() > 0 {
		return app.Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return app.Config{}, err
	}
	if (*tlsCert == "") != (*tlsKey == "") || (*natsTLSCert == "") != (*natsTLSKey == "") {
		return app.Config{}, errors.New("a TLS certificate needs its key, and a key its certificate")
	}
	if *gcPercent < 0 {
		return app.Config{}, errors.New("--gc-percent must not be negative")
	}
	r := roles[name]
	if name == "serve" && !*searchOn {
		r.Indexer = false
	}
	cfg := app.Config{Roles: r, HTTPAddr: *httpAddr, MetricsAddr: *metricsAddr, TLSCert: *tlsCert, TLSKey: *tlsKey, NATSRootCA: *natsCA, Pprof: *pprofAddr, Logger: log}
	if *testTTL < 0 || *testTTL%time.Second != 0 {
		return cfg, errors.New("--test-ttl must be whole seconds, 0 for none")
	}
	cfg.Conversations.TestTTL = int64(*testTTL / time.Second)
	if cfg.Push, err = pushConfig(); err != nil {
		return cfg, err
	}
	switch {
	case name == "pushnotify" && !cfg.Push.Configured() && !*noProvider:
		return cfg, errors.New("pushnotify needs a provider: --apns-key-file, --fcm-credentials or --webpush-vapid-key-file (or --no-provider, for a cluster without push notifications)")
	case *noProvider && cfg.Push.Configured():
		return cfg, errors.New("--no-provider contradicts the provider flags given")
	}
	if cfg.Roles.History {
		// The embedded history store lives with the history role.
		cfg.History.Dir = filepath.Join(*dataDir, "history")
	}
	switch {
	case !cfg.Roles.Indexer:
	case *openSearchURL != "":
		cfg.Search.OpenSearch = &opensearch.Config{URL: *openSearchURL, Index: *openSearchIndex}
	default:
		// The embedded search index lives with the indexer role.
		cfg.Search.Dir = filepath.Join(*dataDir, "search")
	}
	if err := cql.history(&cfg.History); err != nil {
		return cfg, err
	}
	// The history role erases users and sweeps retention: it deletes
	// their files, so it needs the gateways' attachment store. Alone (a
	// split deployment) it has none unless --attachments names one (the
	// gateways' S3 bucket, or their shared --attachments-dir): its own
	// <data>/attachments would hold nothing of theirs.
	historyAlone := cfg.Roles.History && !cfg.Roles.Gateway && !flagSet(fs, "attachments")
	if (cfg.Roles.Gateway || cfg.Roles.History) && !historyAlone {
		if err := attachConfig(&cfg, *dataDir); err != nil {
			return cfg, err
		}
	}
	cfg.Schema.HotWindow = *hotWindow
	cfg.Schema.Duplicates = *dedupe
	cfg.Schema.FastDuplicates = *fastDedupe
	cfg.Schema.Replicas = *replicas
	cfg.Schema.Partitions = *partitions
	cfg.Schema.Streams = *streams
	cfg.Embedded.Streams = *streams
	cfg.Retention.Interval = *trimEvery
	if *retentionSweep <= 0 {
		return cfg, errors.New("--retention-sweep must be positive")
	}
	cfg.RetentionSweep = *retentionSweep
	cfg.Gateway.Heartbeat = *heartbeat
	cfg.Gateway.RateBurst = *burst
	cfg.Gateway.RateSustained = *rate
	cfg.Gateway.MaxAddedPerHour = *addedPerHour
	cfg.Gateway.Compression = true
	cfg.Gateway.MaxConnsPerUser = *maxPerUser
	cfg.Gateway.DeliveredDelay = *deliveredDelay
	cfg.Gateway.MaxConnsPerIP = *maxPerIP
	if *origins != "" {
		cfg.Gateway.AllowedOrigins = strings.Split(*origins, ",")
	}
	if cfg.Gateway.TrustedProxies, err = gateway.ParsePrefixes(*trustedProxies); err != nil {
		return cfg, fmt.Errorf("--trusted-proxies: %w", err)
	}
	cfg.Gateway.ClientIPHeader = *clientIPHeader
	cfg.GCPercent = gcPercentFor(cfg.Roles, *gcPercent, os.Getenv("GOGC"))
	if cfg.Tracing, err = tracingConfig(*otlpEndpoint, *traceSample, os.Getenv); err != nil {
		return cfg, err
	}
	if gatewayOnly {
		if *natsURL == "" {
			return cfg, fmt.Errorf("%s needs --nats-url (or NATTER_NATS_URL)", name)
		}
		cfg.NATSURL = strings.TrimSpace(*natsURL)
		cfg.EraserNATSURL = strings.TrimSpace(*eraserURL)
	} else {
		switch *syncMode {
		case "interval", "always":
		default:
			return cfg, fmt.Errorf(`--sync must be "interval" or "always", not %q`, *syncMode)
		}
		cfg.Embedded = natsrv.Config{Listen: *natsAddr, DataDir: *dataDir, SyncAlways: *syncMode == "always",
			TLSCert: *natsTLSCert, TLSKey: *natsTLSKey}
	}
	cfg.Auth = auth.Config{PublicKeyFile: *pubKey, JWKSFile: *jwks, Secret: *secret,
		Leeway: *leeway, Audience: *audience, Issuer: *issuer, Logger: log}
	if cfg.Auth.Secret == "" {
		cfg.Auth.Secret = os.Getenv("NATTER_JWT_SECRET")
	}
	if cfg.Auth.Secret == "" && cfg.Auth.PublicKeyFile == "" && cfg.Auth.JWKSFile == "" && cfg.Roles.Gateway {
		if !*dev {
			return cfg, errors.New("no JWT secret: set NATTER_JWT_SECRET or --jwt-secret (or --jwt-public-key), or run with --dev")
		}
		s, created, err := devSecret(*dataDir)
		if err != nil {
			return cfg, err
		}
		cfg.Auth.Secret = s
		if created {
			log.Warn("dev mode: generated a JWT secret; natter token --data signs with it", "file", filepath.Join(*dataDir, devSecretFile))
		} else {
			log.Warn("dev mode: using the generated JWT secret", "file", filepath.Join(*dataDir, devSecretFile))
		}
	}
	if cfg.Roles.Gateway && !*dev && cfg.Auth.Secret != "" {
		// A gateway verifies client tokens with the secret; a weak one
		// lets anyone sign in as anyone.
		if err := checkSecret(cfg.Auth.Secret); err != nil {
			return cfg, err
		}
	}
	cfg.Web = name == "serve" || name == "gateway"
	if *dev && cfg.Web && cfg.Auth.Secret != "" && cfg.Auth.PublicKeyFile == "" && cfg.Auth.JWKSFile == "" {
		// The web app's sign-in: GET /dev/token?user=alice, signed with the
		// secret this server verifies with.
		secret, ttl := cfg.Auth.Secret, *devTokenTTL
		if ttl <= 0 {
			return cfg, errors.New("--dev-token-ttl must be positive")
		}
		cfg.DevTokens = func(user string) (string, error) {
			return auth.IssueHS256(secret, user, ttl, time.Now())
		}
		log.Warn("dev mode: GET /dev/token?user=<id> hands out tokens for any user")
	}
	return cfg, nil
}

// devSecret reads the generated dev secret under dir, creating it first.
func devSecret(dir string) (string, bool, error) {
	path := filepath.Join(dir, devSecretFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, err
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	s := base64.RawURLEncoding.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write dev secret: %w", err)
	}
	return s, true, nil
}

func serve(args []string, stderr io.Writer, name string) error {
	cfg, err := serveConfig(args, stderr, name)
	if err != nil {
		return err
	}
	if cfg.Tracing.Export {
		logTraceErrors(cfg.Logger)
	}
	ctx, stop := signalContext()
	defer stop()
	a, err := app.Start(ctx, cfg)
	if err != nil {
		return err
	}
	var relayout error
	select {
	case <-ctx.Done():
	case <-a.Relayout():
		relayout = app.ErrRelayout
	}
	cfg.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return errors.Join(relayout, a.Shutdown(sctx))
}

// token prints a JWT for --user, signed with the HS256 secret.
func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natter token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id ([A-Za-z0-9_-]{1,64})")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	secret := fs.String("jwt-secret", "", "HS256 secret (default: env NATTER_JWT_SECRET, else the --dev secret under --data)")
	dataDir := fs.String("data", "./data", "data directory of a --dev server, whose generated secret is used when no other is given")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("--user is required")
	}
	if *ttl <= 0 {
		return errors.New("--ttl must be positive")
	}
	s, err := tokenSecret(*secret, *dataDir)
	if err != nil {
		return err
	}
	tok, err := auth.IssueHS256(s, *user, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
