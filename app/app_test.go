package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
)

func TestOpenHistory(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	own, err := localstore.New(localstore.Config{Dir: t.TempDir(), NoSync: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()

	// The caller's store wins and stays the caller's to close.
	s, closer, err := OpenHistory(ctx, HistoryConfig{Store: own, Dir: t.TempDir()}, log)
	if err != nil || s != own || closer != nil {
		t.Fatalf("with Store: %v, closer set %v, err %v", s, closer != nil, err)
	}
	// A directory opens the embedded store, which the App closes.
	s, closer, err = OpenHistory(ctx, HistoryConfig{Dir: filepath.Join(t.TempDir(), "h"), NoSync: true}, log)
	if err != nil || s == nil || closer == nil {
		t.Fatalf("with Dir: %v, closer set %v, err %v", s, closer != nil, err)
	}
	if _, ok := s.(*localstore.Store); !ok {
		t.Errorf("with Dir: a %T, want the embedded store", s)
	}
	if err := closer(); err != nil {
		t.Errorf("close the embedded store: %v", err)
	}
	// Nothing named: no store in this process.
	s, closer, err = OpenHistory(ctx, HistoryConfig{}, log)
	if err != nil || s != nil || closer != nil {
		t.Fatalf("with nothing: %v, closer set %v, err %v", s, closer != nil, err)
	}
}

func testConfig(t *testing.T, roles Roles) Config {
	return Config{
		Roles:    roles,
		HTTPAddr: "127.0.0.1:0",
		Embedded: natsrv.Config{Listen: "127.0.0.1:-1", DataDir: t.TempDir()},
		Auth:     auth.Config{Secret: "test-secret"},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func TestHistoryRoleNeedsAStore(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Start(ctx, testConfig(t, Roles{History: true}))
	if !errors.Is(err, ErrNoHistoryStore) {
		t.Fatalf("Start returned %v, want ErrNoHistoryStore", err)
	}
}

// TestRoleTable starts Apps with one role each and every role, and checks
// each runs what its row says and leaves nothing running.
func TestRoleTable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		roles   Roles
		gateway bool
		parts   []string
	}{
		// Every App here holds the embedded server, so it trims CHAT and
		// installs the registry's service users; the gateway role serves
		// the chat service API; each follows the message streams' layout.
		{"gateway", Roles{Gateway: true}, true, []string{"retention", "service-users", "gateway", "fan-out", "chatapi", "layout"}},
		{"presence", Roles{Presence: true}, false, []string{"retention", "service-users", "presence service", "layout"}},
		{"history", Roles{History: true}, false, []string{"retention", "service-users", "history writer", "layout"}},
		// No push provider: the consumer is kept acknowledged.
		{"pushnotify", Roles{Push: true}, false, []string{"retention", "service-users", "push unsent", "layout"}},
		{"events", Roles{Events: true}, false, []string{"retention", "service-users", "events", "layout"}},
		{"all", AllRoles, true, []string{"retention", "service-users", "gateway", "fan-out", "chatapi", "presence service", "history writer", "push unsent", "events", "layout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(natstest.CheckGoroutines(t))
			cfg := testConfig(t, tc.roles)
			cfg.History = HistoryConfig{Dir: t.TempDir(), NoSync: true}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a, err := Start(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range a.parts {
				names = append(names, p.name)
			}
			if (a.Gateway() != nil) != tc.gateway || len(names) != len(tc.parts) {
				t.Errorf("gateway %v, parts %v; want gateway %v, parts %v", a.Gateway() != nil, names, tc.gateway, tc.parts)
			}
			for i := range min(len(names), len(tc.parts)) {
				if names[i] != tc.parts[i] {
					t.Errorf("parts %v, want %v", names, tc.parts)
					break
				}
			}
			resp, err := http.Get("http://" + a.HTTPAddr() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("/healthz: %s", resp.Status)
			}
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer scancel()
			if err := a.Shutdown(sctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := a.Shutdown(sctx); err != nil {
				t.Fatalf("second Shutdown: %v", err)
			}
		})
	}
}

// TestShutdownLeavesTheServerTime: a connection whose subscription cannot
// drain (its handler is stuck behind a backlog) must not use up the whole
// shutdown deadline, or the embedded server's shutdown fails with
// "shutdown not complete" (seen in e2e after the 5,000-member group test).
func TestShutdownLeavesTheServerTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := Start(ctx, testConfig(t, Roles{Gateway: true}))
	if err != nil {
		t.Fatal(err)
	}
	nc, _, err := a.connect(ctx, "", "stuck")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	if _, err := nc.Subscribe("stuck.>", func(*nats.Msg) { <-release }); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := nc.Publish("stuck.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer scancel()
	if err := a.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
