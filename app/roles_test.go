package app

import (
	"context"
	"errors"
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
