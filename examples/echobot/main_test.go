package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/client/service"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/services"
)

const secret = "echobot-test-secret-Lq8Vn3Xz5Rw2Tb7"

// TestEchoBot runs a whole natter serve in-process, registers the echo
// service as `natter service add echo --as echo-bot` does, runs the bot on
// its own NATS user, and has a real WebSocket user talk to it through the
// gateway: "hi" is answered "echo: hi"; once the bot is removed from the
// conversation it hears nothing more.
func TestEchoBot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, app.Config{
		Roles:    app.AllRoles,
		HTTPAddr: "127.0.0.1:0",
		Embedded: natsrv.Config{Listen: "127.0.0.1:-1", DataDir: t.TempDir()},
		History:  app.HistoryConfig{Dir: t.TempDir(), NoSync: true},
		Auth:     auth.Config{Secret: secret},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	bot, err := service.Connect(register(t, a, "echo", "echo-bot"))
	if err != nil {
		t.Fatal(err)
	}
	defer bot.Close()
	botCtx, stopBot := context.WithCancel(ctx)
	botDone := make(chan error, 1)
	go func() { botDone <- run(botCtx, bot, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		stopBot()
		if err := <-botDone; err != nil {
			t.Errorf("bot: %v", err)
		}
	}()

	tok, err := auth.IssueHS256(secret, "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	alice, err := client.Dial(ctx, a.WebSocketURL(), client.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	conv, err := alice.CreateGroup(ctx, "bots", "echo-bot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, conv.Conv, "m1", map[string]string{"text": "hi"}); err != nil {
		t.Fatal(err)
	}
	if got := nextText(t, alice, "echo-bot"); got != "echo: hi" {
		t.Fatalf("the bot answered %q", got)
	}

	if err := alice.RemoveMember(ctx, conv.Conv, "echo-bot"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, conv.Conv, "m2", map[string]string{"text": "still there?"}); err != nil {
		t.Fatal(err)
	}
	wait, cancelWait := context.WithTimeout(ctx, 2*time.Second)
	defer cancelWait()
	for {
		ev, err := alice.NextEvent(wait, protocol.TypeMessage)
		if err != nil {
			break // nothing more: good
		}
		var m protocol.Message
		if err := ev.Decode(&m); err == nil && m.Sender == "echo-bot" {
			t.Fatalf("a removed bot answered: %s", m.Body)
		}
	}
}

// nextText waits for the next message from sender and returns its text.
func nextText(t *testing.T, c *client.Client, sender string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		ev, err := c.NextEvent(ctx, protocol.TypeMessage)
		if err != nil {
			t.Fatalf("no message from %s: %v", sender, err)
		}
		var m protocol.Message
		if err := ev.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m.Sender != sender {
			continue
		}
		var body struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(m.Body, &body); err != nil {
			t.Fatal(err)
		}
		return body.Text
	}
}

// register adds a service to the registry as `natter service add` does
// (a password whose hash the registry keeps) and returns its credentials
// URL once the server accepts them.
func register(t *testing.T, a *app.App, name string, senders ...string) string {
	t.Helper()
	nc, err := nats.Connect(a.NATS().OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	reg, err := services.Open(t.Context(), js, nil)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := natsrv.NewPassword()
	h, err := services.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Put(t.Context(), &services.Service{Name: name, Senders: senders, PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	u := natsrv.ServiceURLs([]string{strings.TrimPrefix(a.NATS().ClientURL(), "nats://")}, name, pw, false)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := nats.Connect(u, nats.NoReconnect())
		if err == nil {
			c.Close()
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s never accepted: %v", name, err)
		}
	}
}
