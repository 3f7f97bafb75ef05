// Package e2e drives Natter end to end: a real `natter serve` App started
// in-process with embedded NATS on random ports and temp dirs, and real
// WebSocket clients speaking protocol v1 to it.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/protocol"
)

const secret = "e2e-Hk7Qm2Zp9Vw4Rt8Ny3Lb6Xc1Fj5Gd0Sq"

// env is one running Natter and what tests need to talk to it.
type env struct {
	t   testing.TB
	app *app.App
}

func testLogger() *slog.Logger {
	if os.Getenv("NATTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs `natter serve` in-process; tweak may change the config.
func start(t testing.TB, tweak ...func(*app.Config)) *env {
	t.Helper()
	cfg := app.Config{
		HTTPAddr: "127.0.0.1:0",
		Embedded: natsrv.Config{Listen: "127.0.0.1:-1", DataDir: t.TempDir()},
		History:  app.HistoryConfig{Dir: filepath.Join(t.TempDir(), "history"), NoSync: true},
		Auth:     auth.Config{Secret: secret},
		Logger:   testLogger(),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	return startWith(t, cfg)
}

// startWith starts an App with cfg as given; one with the embedded NATS
// is node n1 of a cluster in the cluster topology (topology_test.go).
func startWith(t testing.TB, cfg app.Config) *env {
	t.Helper()
	wait := 30 * time.Second
	if clustered() && cfg.NATSURL == "" {
		clusterize(t, &cfg)
		wait = 2 * time.Minute // 4 R3 streams and their consumers, R3 buckets
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	a, err := app.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start natter: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &env{t: t, app: a}
}

// startGateway runs a second gateway (natter gateway) against e's NATS.
func (e *env) startGateway(t testing.TB) *env {
	t.Helper()
	return startWith(t, app.Config{
		HTTPAddr: "127.0.0.1:0",
		NATSURL:  e.app.NATS().RoleURL(natsrv.RoleGateway),
		Roles:    app.Roles{Gateway: true},
		Auth:     auth.Config{Secret: secret},
		Logger:   testLogger(),
	})
}

func token(t testing.TB, user string) string {
	t.Helper()
	tok, err := auth.IssueHS256(secret, user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects user (hello auth) and closes the client at the end.
func (e *env) dial(t testing.TB, user string) *client.Client {
	t.Helper()
	return e.dialOpts(t, client.Options{Token: token(t, user)})
}

func (e *env) dialOpts(t testing.TB, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(ctxT(t), e.app.WebSocketURL(), checked(t, opts))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// nextMessage waits for the next message push.
func nextMessage(t testing.TB, c *client.Client) *protocol.Message {
	t.Helper()
	ev, err := c.NextEvent(ctxT(t), protocol.TypeMessage)
	if err != nil {
		t.Fatalf("waiting for a message: %v", err)
	}
	var m protocol.Message
	if err := ev.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// nextEvent waits for the next push of one of types, decoded into a map.
func nextEvent(t testing.TB, c *client.Client, types ...string) map[string]any {
	t.Helper()
	ev, err := c.NextEvent(ctxT(t), types...)
	if err != nil {
		t.Fatalf("waiting for %v: %v", types, err)
	}
	var m map[string]any
	if err := json.Unmarshal(ev.Raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// noEvent asserts that no push of types arrives within d.
func noEvent(t testing.TB, c *client.Client, d time.Duration, types ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ev, err := c.NextEvent(ctx, types...)
	if err == nil {
		t.Fatalf("unexpected push %s", ev.Raw)
	}
}

// code returns the protocol error code of err, or "".
func code(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("error = %v, want code %q", err, want)
	}
}

// request sends a raw frame map and returns the reply decoded.
func request(t testing.TB, c *client.Client, frame map[string]any) (map[string]any, error) {
	t.Helper()
	raw, err := c.Request(ctxT(t), frame)
	var m map[string]any
	if raw != nil {
		_ = json.Unmarshal(raw, &m)
	}
	return m, err
}

func text(s string) map[string]any { return map[string]any{"text": s} }

func jwtClaims(sub string, ttl time.Duration) jwt.RegisteredClaims {
	now := time.Now()
	return jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl))}
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
