package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// natter migrate --nats-url is the operator step for a NATS that natter
// nats does not run: with the operator's URL it creates the schema with
// its flags; a role's URL may not, and it says so at once (issue 14).
func TestMigrateNATS(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)

	var out strings.Builder
	start := time.Now()
	err := run([]string{"migrate", "--nats-url", srv.RoleURL(natsrv.RoleGateway), "--hot-window", "2h"}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "nats.url") || !strings.Contains(err.Error(), "permissions violation") {
		t.Fatalf("migrate as the gateway: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the refusal took %v", d)
	}
	if _, err := js.Stream(context.Background(), schema.StreamChat); err == nil {
		t.Fatal("the gateway's user created CHAT")
	}

	if err := run([]string{"migrate", "--nats-url", srv.OperatorURL(), "--hot-window", "2h"}, &out, io.Discard); err != nil {
		t.Fatalf("migrate as the operator: %v", err)
	}
	if !strings.Contains(out.String(), "the NATS schema is up to date") {
		t.Fatalf("output: %q", out.String())
	}
	st, err := js.Stream(context.Background(), schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := schema.HotWindowOf(st.CachedInfo().Config); !ok || w != 2*time.Hour {
		t.Fatalf("hot window %v, %v", w, ok)
	}
	l, err := schema.ReadLayout(context.Background(), js)
	if err != nil || l.Partitions != schema.DefaultPartitions {
		t.Fatalf("layout %+v, %v", l, err)
	}
	for _, c := range schema.Consumers(l, schema.StreamChat) {
		if _, err := js.Consumer(context.Background(), schema.StreamChat, c.Durable); err != nil {
			t.Fatalf("consumer %s: %v", c.Durable, err)
		}
	}
	if _, err := js.KeyValue(context.Background(), schema.BucketPush); err != nil {
		t.Fatal(err)
	}
	// --partitions reaches the schema: another N is refused, the same kept.
	err = run([]string{"migrate", "--nats-url", srv.OperatorURL(), "--partitions", "8"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "partition count") {
		t.Fatalf("migrate --partitions 8 over %d: %v", l.Partitions, err)
	}
	if err := run([]string{"migrate", "--nats-url", srv.OperatorURL(), "--partitions", fmt.Sprint(l.Partitions)}, io.Discard, io.Discard); err != nil {
		t.Fatalf("migrate --partitions %d: %v", l.Partitions, err)
	}
}

// natter credentials prints a role's own URL list from the shared
// credentials file, and the node accepts it as that role.
func TestCredentials(t *testing.T) {
	authFile := t.TempDir() + "/nats-auth.json"
	var out strings.Builder
	if err := run([]string{"credentials", "--auth-file", authFile, "--servers", "n1:4222,n2:4222", "--user", "presence"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	urls := strings.Split(strings.TrimSpace(out.String()), ",")
	if len(urls) != 2 || !strings.HasPrefix(urls[0], "nats://presence:") || !strings.HasSuffix(urls[1], "@n2:4222") {
		t.Fatalf("urls = %q", out.String())
	}
	var again strings.Builder
	if err := run([]string{"credentials", "--auth-file", authFile, "--servers", "n1:4222,n2:4222", "--user", "presence"}, &again, io.Discard); err != nil || again.String() != out.String() {
		t.Fatalf("a second run gave %q, %v: the passwords must stay", again.String(), err)
	}
	if err := run([]string{"credentials", "--auth-file", authFile, "--servers", "n1:4222", "--user", "root"}, io.Discard, io.Discard); err == nil {
		t.Fatal("an unknown user got a URL")
	}

	srv, err := natsrv.Start(t.Context(), natsrv.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AuthFile: authFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	host := strings.TrimPrefix(srv.ClientURL(), "nats://")
	var url strings.Builder
	if err := run([]string{"credentials", "--auth-file", authFile, "--servers", host, "--user", "presence"}, &url, io.Discard); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(strings.TrimSpace(url.String()))
	if err != nil {
		t.Fatalf("the node refused the presence URL: %v", err)
	}
	nc.Close()
}

// natter credentials --nats-config prints the role users in NATS server
// configuration syntax, with exactly the permissions nats/schema gives
// them, for a NATS cluster natter nats does not run.
func TestCredentialsNATSConfig(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := run([]string{"credentials", "--auth-file", filepath.Join(dir, "nats-auth.json"), "--nats-config"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte("accounts { CHAT { users: [\n"+out.String()+"] } }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("the printed users do not parse: %v\n%s", err, out.String())
	}
	got := map[string]*server.User{}
	for _, u := range opts.Users {
		got[u.Username] = u
	}
	for _, role := range natsrv.Roles {
		u, want := got[role], must(schema.RolePermissions(role))
		if u == nil || u.Permissions == nil || len(u.Password) < 24 {
			t.Fatalf("role %s: %+v", role, u)
		}
		if !slices.Equal(u.Permissions.Publish.Allow, want.Publish) || !slices.Equal(u.Permissions.Subscribe.Allow, want.Subscribe) ||
			(u.Permissions.Response != nil) != want.AllowResponses {
			t.Fatalf("role %s got %+v, want %+v", role, u.Permissions, want)
		}
	}
}

func must(p schema.Permissions, ok bool) schema.Permissions {
	if !ok {
		panic("no permissions")
	}
	return p
}
