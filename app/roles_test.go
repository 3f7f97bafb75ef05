package app

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// A role against a NATS without the schema creates nothing, with its own
// user or even the operator's: it waits for the operator, then fails
// saying which step creates it (issue 14).
func TestRoleNeverCreatesTheSchema(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	store, err := localstore.New(localstore.Config{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	for _, c := range []struct {
		roles Roles
		user  string
	}{
		{Roles{Gateway: true}, natsrv.RoleGateway},
		{Roles{Presence: true}, natsrv.RolePresence},
		{Roles{History: true}, natsrv.RoleHistory},
		{Roles{Presence: true}, "operator"},
	} {
		cfg := testConfig(t, c.roles)
		cfg.Embedded = natsrv.Config{}
		cfg.NATSURL = srv.RoleURL(c.user)
		if c.user == "operator" {
			cfg.NATSURL = srv.OperatorURL()
		}
		cfg.History = HistoryConfig{Store: store}
		cfg.SchemaWait = 3 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		a, err := Start(ctx, cfg)
		cancel()
		if err == nil {
			stopApp(t, a)
			t.Fatalf("%+v started as %s on a NATS without the schema", c.roles, c.user)
		}
		if !errors.Is(err, schema.ErrMissing) || !strings.Contains(err.Error(), "natter nats") {
			t.Fatalf("%+v as %s: %v; want the missing part and the operator's step", c.roles, c.user, err)
		}
		for _, name := range []string{schema.StreamChat, schema.KVStream(schema.BucketPresence), schema.KVStream(schema.BucketConversations)} {
			if _, err := js.Stream(context.Background(), name); !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Fatalf("after %+v as %s: stream %s: %v", c.roles, c.user, name, err)
			}
		}
	}
}

// A role waiting for the operator's schema already holds its client port,
// so a port chosen for it cannot go to another process meanwhile; once it
// gives up the port is free again.
func TestRoleHoldsItsPortWhileWaiting(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	srv := natstest.Start(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	_ = free.Close()

	cfg := testConfig(t, Roles{Presence: true})
	cfg.Embedded = natsrv.Config{}
	cfg.NATSURL = srv.RoleURL(natsrv.RolePresence)
	cfg.HTTPAddr = addr
	cfg.SchemaWait = 3 * time.Second
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a, err := Start(ctx, cfg)
		if err == nil {
			stopApp(t, a)
		}
		done <- err
	}()
	time.Sleep(time.Second) // waiting for the schema now
	if ln, err := net.Listen("tcp", addr); err == nil {
		_ = ln.Close()
		t.Fatalf("while the role waits for the schema its port %s is free for anyone", addr)
	}
	if err := <-done; !errors.Is(err, schema.ErrMissing) {
		t.Fatalf("Start = %v; want the missing schema", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port stays taken after Start failed: %v", err)
	}
	_ = ln.Close()
}
