package natsrv_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// TestURLFilesListTheCluster: a node's role URL file names every node, so
// a role connected through it keeps working when the node it is on
// stops, and a role (re)started from it while that node is down connects
// to another.
func TestURLFilesListTheCluster(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, opjs := c.Connect(t)
	if err := schema.Ensure(ctx, opjs, schema.Config{Replicas: 3}); err != nil {
		t.Fatal(err)
	}

	role := natsrv.RoleService
	b, err := os.ReadFile(filepath.Join(c.Servers[0].DataDir(), natsrv.RoleURLFile(role)))
	if err != nil {
		t.Fatal(err)
	}
	file := strings.TrimSpace(string(b))
	if n := len(strings.Split(file, ",")); n != 3 {
		t.Fatalf("n1's %s names %d servers, want the 3 nodes: %s", natsrv.RoleURLFile(role), n, natsrv.RedactURLs(file))
	}
	for _, s := range c.Servers {
		if !strings.Contains(file, strings.TrimPrefix(s.ClientURL(), "nats://")) {
			t.Errorf("n1's URL file lacks node %s (%s)", s.Server().Name(), s.ClientURL())
		}
	}

	connect := func() (*nats.Conn, jetstream.JetStream) {
		t.Helper()
		nc, err := nats.Connect(file, nats.CustomInboxPrefix(schema.Inbox(role)),
			nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second))
		if err != nil {
			t.Fatalf("connect with n1's %s: %v", natsrv.RoleURLFile(role), err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	// publish sends one message as the service role, retrying while the
	// stream elects a new leader.
	publish := func(js jetstream.JetStream, id string) {
		t.Helper()
		var err error
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = js.Publish(pctx, schema.Msg("conv1"), []byte(`{"sender":"svc","client_id":"`+id+`","body":{"text":"hi"}}`),
				jetstream.WithMsgID("svc:"+id))
			pcancel()
			if err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("publish %s: %v", id, err)
	}

	nc, js := connect()
	publish(js, "1")
	on := c.ServerNamed(nc.ConnectedServerName())
	if on == nil {
		t.Fatalf("connected to unknown server %q", nc.ConnectedServerName())
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if err := on.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	publish(js, "2")
	if nc.ConnectedServerName() == on.Server().Name() {
		t.Fatalf("still connected to the node that was shut down")
	}

	// Restarted from the same file while the node is down. n1 may have
	// been the one shut down: the file still names the two others.
	_, js2 := connect()
	publish(js2, "3")
}
