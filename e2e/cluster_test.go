package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

func TestTwoGateways(t *testing.T) {
	e := start(t)
	g2 := e.startGateway(t)
	ctx := ctxT(t)
	a := e.dial(t, "alice")   // gateway A
	b := g2.dial(t, "bob")    // gateway B
	a2 := g2.dial(t, "alice") // alice's second device, on B
	conv, err := b.CreateGroup(ctx, "across", "alice")
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, a, protocol.TypeConversation)
	ack, err := a.Send(ctx, conv.Conv, "1", text("from A"))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, b); m.Seq != ack.Seq || m.Sender != "alice" {
		t.Fatalf("bob on B got %+v", m)
	}
	if m := nextMessage(t, a2); m.Seq != ack.Seq {
		t.Fatalf("alice's device on B got %+v", m)
	}
	back, err := b.Send(ctx, conv.Conv, "2", text("from B"))
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, a); m.Seq != back.Seq || m.Sender != "bob" {
		t.Fatalf("alice on A got %+v", m)
	}
	if _, err := request(t, b, map[string]any{"type": "typing", "conv": conv.Conv}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, a, protocol.TypeTyping); ev["user"] != "bob" {
		t.Fatalf("typing across gateways = %v", ev)
	}
	// Membership changes made on B reach a user on A live.
	c := e.dial(t, "carol")
	if err := b.AddMembers(ctx, conv.Conv, "carol"); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, c, protocol.TypeConversation)
	if _, err := c.Send(ctx, conv.Conv, "3", text("carol on A")); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, b); m.Sender != "carol" {
		t.Fatalf("bob got %+v", m)
	}
}

// An internal service publishes with the credentials from nats.url, with
// JetStream, and members get the message with the PubAck's sequence.
func TestInternalServicePublish(t *testing.T) {
	dir := t.TempDir()
	e := start(t, func(c *app.Config) { c.Embedded.DataDir = dir })
	ctx := ctxT(t)
	a := e.dial(t, "alice")
	conv, err := a.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	urlBytes, err := os.ReadFile(filepath.Join(dir, "nats.url"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "nats.url")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("nats.url mode = %v", fi.Mode())
	}
	url := strings.TrimSpace(string(urlBytes))
	if _, err := nats.Connect(e.app.NATSClientURL()); err == nil {
		t.Fatal("the embedded NATS accepted a client without credentials")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	msg := nats.NewMsg("chat.msg." + conv.Conv)
	msg.Header.Set("Nats-Msg-Id", "svc-x:1")
	msg.Data = []byte(`{"sender":"svc-x","client_id":"1","body":{"text":"deploy finished"}}`)
	pa, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	m := nextMessage(t, a)
	if m.Seq != pa.Sequence || m.Sender != "svc-x" || m.ClientID != "1" || string(m.Body) != `{"text":"deploy finished"}` || m.TS == "" {
		t.Fatalf("alice got %+v, PubAck seq %d", m, pa.Sequence)
	}
	// The same Nats-Msg-Id again is de-duplicated by the stream.
	pa2, err := js.PublishMsg(ctx, msg)
	if err != nil || !pa2.Duplicate || pa2.Sequence != pa.Sequence {
		t.Fatalf("republish = %+v, %v", pa2, err)
	}
	// Garbage published to a conversation harms nobody.
	if _, err := js.Publish(ctx, "chat.msg."+conv.Conv, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	// It is kept, with the reason, in the DEAD stream for operators.
	dead, err := js.Stream(ctx, "DEAD")
	if err != nil {
		t.Fatal(err)
	}
	var letter *jetstream.RawStreamMsg
	waitFor(t, 10*time.Second, func() bool {
		letter, err = dead.GetLastMsgForSubject(ctx, "chat.dead."+conv.Conv)
		return err == nil
	})
	// Natter-Subject is the subject it is stored under in CHAT: the
	// conversation's, with its partition (chat.msg.<conv>.<p>).
	if subj := letter.Header.Get("Natter-Subject"); string(letter.Data) != "not json" || letter.Header.Get("Natter-Reason") == "" ||
		!strings.HasPrefix(subj, "chat.msg."+conv.Conv) || schema.ConvFromSubject(subj) != conv.Conv {
		t.Fatalf("dead letter = %q %v", letter.Data, letter.Header)
	}
	if info, _ := dead.Info(ctx); info.State.Msgs != 1 {
		t.Fatalf("DEAD holds %d letters for one bad message", info.State.Msgs)
	}
	ack, err := a.Send(ctx, conv.Conv, "after", text("still fine"))
	if err != nil {
		t.Fatal(err)
	}
	b := e.dial(t, "bob")
	page, err := b.Sync(ctx, conv.Conv, 0, 10)
	if err != nil || len(page.Messages) != 2 || page.Messages[0].Seq != pa.Sequence || page.Messages[1].Seq != ack.Seq {
		t.Fatalf("sync = %+v, %v", page, err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	check := natstest.CheckGoroutines(t)
	cfg := app.Config{
		HTTPAddr: "127.0.0.1:0",
		Embedded: natsrv.Config{Listen: "127.0.0.1:-1", DataDir: t.TempDir()},
		History:  app.HistoryConfig{Dir: t.TempDir(), NoSync: true},
		Auth:     auth.Config{Secret: secret},
		Logger:   testLogger(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, app: a}
	c1, c2 := e.dial(t, "alice"), e.dial(t, "bob")
	conv, err := c1.CreateGroup(ctx, "leak", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Send(ctx, conv.Conv, "1", text("x")); err != nil {
		t.Fatal(err)
	}
	nextMessage(t, c2)
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-c1.Done()
	<-c2.Done()
	_ = c1.Close()
	_ = c2.Close()
	check()
}

// Each role connects as its own NATS user with an allow-list; the internal
// service user can publish messages and read history, nothing more.
func TestServiceUserAllowList(t *testing.T) {
	e := start(t)
	ctx := ctxT(t)
	a := e.dial(t, "alice")
	conv, err := a.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	nc, err := nats.Connect(e.app.NATS().RoleURL(natsrv.RoleService), nats.CustomInboxPrefix(schema.Inbox(natsrv.RoleService)), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	pa, err := js.Publish(ctx, "chat.msg."+conv.Conv, []byte(`{"sender":"svc-y","client_id":"1","body":{"text":"allowed"}}`))
	if err != nil {
		t.Fatalf("service publish: %v", err)
	}
	if m := nextMessage(t, a); m.Seq != pa.Sequence {
		t.Fatalf("alice got %+v", m)
	}
	if _, err := nc.Request("chat.api.history.last", []byte(`{"conv":"`+conv.Conv+`"}`), 5*time.Second); err != nil {
		t.Fatalf("service reading history: %v", err)
	}
	denied := func(what string, do func() error) {
		t.Helper()
		if err := do(); err != nil {
			return
		}
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("%s was allowed for the service user", what)
		}
	}
	denied("subscribing to chat.user.>", func() error {
		_, err := nc.SubscribeSync("chat.user.>")
		if err == nil {
			err = nc.Flush()
		}
		return err
	})
	denied("publishing into a KV bucket", func() error {
		return nc.Publish("$KV.CONVERSATIONS.c."+conv.Conv, []byte(`{"members":["svc-y"]}`))
	})
	denied("deleting the CHAT stream", func() error {
		return nc.Publish("$JS.API.STREAM.DELETE.CHAT", nil)
	})
	// The conversation is intact.
	if list, err := a.Conversations(ctx); err != nil || len(list) != 1 || list[0].MemberCount != 2 {
		t.Fatalf("after the attempts: %+v, %v", list, err)
	}
}

// The presence and history roles work as their own NATS users, each in a
// process of its own (here: Apps of their own).
func TestRolesAsTheirOwnUsers(t *testing.T) {
	e := start(t, fastHeartbeat, func(c *app.Config) {
		c.Roles = app.Roles{Gateway: true}
		c.History = app.HistoryConfig{}
	})
	startWith(t, app.Config{
		Roles: app.Roles{Presence: true}, HTTPAddr: "127.0.0.1:0",
		NATSURL: e.app.NATS().RoleURL(natsrv.RolePresence), Logger: testLogger(),
	})
	startWith(t, app.Config{
		Roles: app.Roles{History: true}, HTTPAddr: "127.0.0.1:0",
		NATSURL: e.app.NATS().RoleURL(natsrv.RoleHistory), Logger: testLogger(),
		History: app.HistoryConfig{Dir: t.TempDir(), NoSync: true},
	})
	ctx := ctxT(t)
	bob := e.dial(t, "bob")
	conv := contacts(t, e, bob, "alice")
	alice := e.dial(t, "alice")
	if ev := presenceOf(t, bob, "alice", 5*time.Second); ev["online"] != true {
		t.Fatalf("presence = %v", ev)
	}
	ack, err := alice.Send(ctx, conv.Conv, "", text("through every role"))
	if err != nil {
		t.Fatal(err)
	}
	historyCaughtUp(t, e)
	page, err := bob.History(ctx, conv.Conv, 0, 10)
	if err != nil || len(page.Messages) != 1 || page.Messages[0].Seq != ack.Seq {
		t.Fatalf("history = %+v, %v", page, err)
	}
}
