package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/admin"
	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natsrv"
)

// natter admin finds the operator's URL under --data of a running natter
// serve, prints tables or JSON that parses back, takes its flags after
// the command words, and names unknown users, conversations and commands.
func TestAdminCommand(t *testing.T) {
	const secret = "admin-cmd-Hk7Qm2Zp9Vw4Rt8Ny3Lb6Xc1Fj5Gd0Sq"
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.Start(ctx, app.Config{HTTPAddr: "127.0.0.1:0",
		Embedded: natsrv.Config{Listen: "127.0.0.1:-1", DataDir: data},
		History:  app.HistoryConfig{Dir: filepath.Join(t.TempDir(), "history"), NoSync: true},
		Auth:     auth.Config{Secret: secret}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Shutdown(context.Background()) }()
	tok, err := auth.IssueHS256(secret, "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, a.WebSocketURL(), client.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	g, err := c.CreateGroup(ctx, "ops", "bob")
	if err != nil {
		t.Fatal(err)
	}

	natter := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(append([]string{"admin", "--data", data}, args...), &out, &errOut)
		return out.String(), err
	}
	out, err := natter("user", "show", "alice", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var u admin.UserReport
	if err := json.Unmarshal([]byte(out), &u); err != nil || len(u.Conversations) != 1 || u.Conversations[0].Conv != g.Conv || u.Conversations[0].Role != admin.RoleOwner {
		t.Fatalf("user show --json: %v\n%s", err, out)
	}
	if out, err = natter("conv", "add", g.Conv, "carol"); err != nil || !strings.Contains(out, "added carol to "+g.Conv) {
		t.Fatalf("conv add: %v\n%s", err, out)
	}
	if out, err = natter("conv", "show", g.Conv); err != nil || !strings.Contains(out, "MEMBERS (3)") || !strings.Contains(out, "carol") {
		t.Fatalf("conv show: %v\n%s", err, out)
	}
	if out, err = natter("--json", "stream", "lag"); err != nil {
		t.Fatal(err)
	}
	var lag admin.LagReport
	if err := json.Unmarshal([]byte(out), &lag); err != nil || len(lag.Consumers) == 0 {
		t.Fatalf("stream lag --json: %v\n%s", err, out)
	}
	for args, want := range map[string]string{
		"user show nobody":   `unknown user "nobody"`,
		"conv show g_nope":   `unknown conversation "g_nope"`,
		"conv frobnicate x":  `unknown command "conv frobnicate x"`,
		"conv add " + g.Conv: "want 2 arguments, got 1",
		"user show bad.id":   "invalid id",
	} {
		if _, err := natter(strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("natter admin %s: %v, want an error saying %q", args, err, want)
		}
	}
	if err := run([]string{"admin", "--data", t.TempDir(), "stream", "lag"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "nats.url") {
		t.Errorf("admin without a URL file: %v", err)
	}
}
