package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/client/service"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/services"
)

// natter is a whole natter serve in-process: embedded NATS, every role.
func natter(t *testing.T) *app.App {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, app.Config{
		Roles:       app.AllRoles,
		HTTPAddr:    "127.0.0.1:0",
		Embedded:    natsrv.Config{Listen: "127.0.0.1:-1", DataDir: t.TempDir()},
		History:     app.HistoryConfig{Dir: t.TempDir(), NoSync: true},
		MetricsAddr: "127.0.0.1:0",
		Auth:        auth.Config{Secret: "test-secret"},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	return a
}

// register adds a service to the registry as `natter service add` does and
// returns its credentials URL once the server accepts them.
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

// userToken is a user's token for a's gateway.
func userToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := auth.IssueHS256("test-secret", user, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func code(t *testing.T, err error, want string) {
	t.Helper()
	var se *service.Error
	if !errors.As(err, &se) || se.Code != want {
		t.Fatalf("got %v, want a chat service error %s", err, want)
	}
}

// TestServiceAPI drives every endpoint through the client over a running
// natter, as two services with their own NATS users.
func TestServiceAPI(t *testing.T) {
	a := natter(t)
	ctx := t.Context()
	alerts, err := service.Connect(register(t, a, "alerts", "alert-bot", "ops-bot"))
	if err != nil {
		t.Fatal(err)
	}
	defer alerts.Close()
	billing, err := service.Connect(register(t, a, "billing", "bill-bot"))
	if err != nil {
		t.Fatal(err)
	}
	defer billing.Close()

	conv, err := alerts.CreateConversation(ctx, "alert-bot", protocol.ConversationGroup, "ops", "alice", "bob", "ops-bot")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(conv.Members, []string{"alert-bot", "alice", "bob", "ops-bot"}) {
		t.Fatalf("members %v", conv.Members)
	}
	body := json.RawMessage(`{"text":"disk full"}`)
	p1, err := alerts.Post(ctx, "alert-bot", conv.ID, "alert-1", body)
	if err != nil || p1.Seq == 0 || p1.Duplicate {
		t.Fatalf("post: %+v, %v", p1, err)
	}
	p2, err := alerts.Post(ctx, "alert-bot", conv.ID, "alert-1", body)
	if err != nil || p2.Seq != p1.Seq || !p2.Duplicate || p2.TS != p1.TS {
		t.Fatalf("repeated post: %+v (first %+v), %v", p2, p1, err)
	}
	// Senders that are not the service's: another service's, a user.
	_, err = alerts.Post(ctx, "bill-bot", conv.ID, "x", body)
	code(t, err, protocol.ServiceCodeForbidden)
	_, err = alerts.Post(ctx, "alice", conv.ID, "x", body)
	code(t, err, protocol.ServiceCodeForbidden)
	if got := refusedMetric(t, a); got != 2 {
		t.Fatalf("natter_chatapi_refused_total = %v, want 2", got)
	}
	// Its own sender, not a member.
	_, err = billing.Post(ctx, "bill-bot", conv.ID, "x", body)
	code(t, err, protocol.ServiceCodeForbidden)
	_, err = billing.History(ctx, "bill-bot", conv.ID, 0, 10)
	code(t, err, protocol.ServiceCodeForbidden)
	// Bad input.
	_, err = alerts.Post(ctx, "alert-bot", conv.ID, "", body)
	code(t, err, protocol.ServiceCodeBadRequest)
	_, err = alerts.Post(ctx, "alert-bot", conv.ID, "y", json.RawMessage(`"not an object"`))
	code(t, err, protocol.ServiceCodeBadRequest)
	_, err = alerts.Post(ctx, "alert-bot", "bad.conv", "y", body)
	code(t, err, protocol.ServiceCodeBadRequest)

	// Edits and deletes by the original sender only; anyone reacts.
	if _, err := alerts.Edit(ctx, "alert-bot", conv.ID, "e1", p1.Seq, json.RawMessage(`{"text":"disk 99% full"}`)); err != nil {
		t.Fatalf("edit: %v", err)
	}
	_, err = alerts.Edit(ctx, "ops-bot", conv.ID, "e2", p1.Seq, json.RawMessage(`{"text":"x"}`))
	code(t, err, protocol.ServiceCodeForbidden)
	_, err = alerts.Delete(ctx, "ops-bot", conv.ID, "d1", p1.Seq)
	code(t, err, protocol.ServiceCodeForbidden)
	if _, err := alerts.React(ctx, "ops-bot", conv.ID, "r1", p1.Seq, json.RawMessage(`{"emoji":"+1"}`)); err != nil {
		t.Fatalf("reaction: %v", err)
	}
	_, err = alerts.Edit(ctx, "alert-bot", conv.ID, "e3", 9999, json.RawMessage(`{"text":"x"}`))
	code(t, err, protocol.ServiceCodeNotFound)

	page, err := alerts.History(ctx, "alert-bot", conv.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range page.Messages {
		if m.Seq == p1.Seq {
			texts = append(texts, string(m.Body))
			if m.Sender != "alert-bot" {
				t.Fatalf("sender %q", m.Sender)
			}
		}
	}
	if len(texts) != 1 {
		t.Fatalf("history %+v lacks the post at %d once", page.Messages, p1.Seq)
	}
	sync, err := alerts.Sync(ctx, "alert-bot", conv.ID, 0, 10)
	if err != nil || !slices.ContainsFunc(sync.Messages, func(m *protocol.Message) bool { return m.Seq == p1.Seq }) {
		t.Fatalf("sync: %+v, %v", sync, err)
	}
	convs, err := alerts.Conversations(ctx, "alert-bot")
	if err != nil || !slices.Contains(convs, conv.ID) {
		t.Fatalf("conversations: %v, %v", convs, err)
	}
	added, err := alerts.AddMember(ctx, "alert-bot", conv.ID, "carol")
	if err != nil || !slices.Contains(added.Members, "carol") {
		t.Fatalf("add: %+v, %v", added, err)
	}
	removed, err := alerts.RemoveMember(ctx, "alert-bot", conv.ID, "carol")
	if err != nil || slices.Contains(removed.Members, "carol") {
		t.Fatalf("remove: %+v, %v", removed, err)
	}
	// Group settings apply to services' senders as to users: in a
	// read-only group only the owner (alert-bot) and admins post, and they
	// delete anyone's message.
	owner, err := client.Dial(ctx, a.WebSocketURL(), client.Options{Token: userToken(t, "alert-bot")})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	p3, err := alerts.Post(ctx, "ops-bot", conv.ID, "ops-1", body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Update(ctx, conv.ID, client.GroupUpdate{ReadOnly: &[]bool{true}[0]}); err != nil {
		t.Fatal(err)
	}
	_, err = alerts.Post(ctx, "ops-bot", conv.ID, "ops-2", body)
	code(t, err, protocol.ServiceCodeForbidden)
	if _, err := alerts.Post(ctx, "alert-bot", conv.ID, "alert-2", body); err != nil {
		t.Fatal(err)
	}
	if _, err := alerts.Delete(ctx, "alert-bot", conv.ID, "d2", p3.Seq); err != nil {
		t.Fatalf("moderator delete: %v", err)
	}

	// billing cannot change a conversation it is not in.
	_, err = billing.AddMember(ctx, "bill-bot", conv.ID, "mallory")
	code(t, err, protocol.ServiceCodeForbidden)
	direct, err := billing.CreateConversation(ctx, "bill-bot", protocol.ConversationDirect, "", "alice")
	if err != nil || direct.Kind != protocol.ConversationDirect {
		t.Fatalf("direct: %+v, %v", direct, err)
	}
}

// A service's NATS user may not publish to CHAT, nor to another
// service's prefix: the server refuses, whatever the chat service does.
func TestServiceCannotBypassTheAPI(t *testing.T) {
	a := natter(t)
	u := register(t, a, "alerts", "alert-bot")
	register(t, a, "billing", "bill-bot")
	errs := make(chan error, 8)
	nc, err := nats.Connect(u, nats.CustomInboxPrefix(schema.ServiceInbox("alerts")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, subj := range []string{"chat.msg.c1", "chat.api.svc.billing.post"} {
		_, err := nc.Request(subj, []byte(`{"as":"bill-bot","conv":"c1","client_id":"x","body":{}}`), time.Second)
		if err == nil {
			t.Fatalf("%s answered", subj)
		}
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Fatalf("%s: %v", subj, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no permissions violation for %s", subj)
		}
	}
}

// `nats micro info chat` works: the service answers $SRV.INFO with every
// endpoint on its wildcard subject.
func TestChatServiceDiscovery(t *testing.T) {
	a := natter(t)
	nc, err := nats.Connect(a.NATS().OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg, err := nc.Request("$SRV.INFO.chat", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, e := range info.Endpoints {
		subjects = append(subjects, e.Subject)
	}
	if info.Name != "chat" || len(subjects) != len(schema.ServiceEndpoints) || !slices.Contains(subjects, "chat.api.svc.*.post") {
		t.Fatalf("info: %s %v", info.Name, subjects)
	}
}

// refusedMetric scrapes natter_chatapi_refused_total from the running
// natter's /metrics.
func refusedMetric(t *testing.T, a *app.App) float64 {
	t.Helper()
	resp, err := http.Get("http://" + a.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "natter_chatapi_refused_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("no natter_chatapi_refused_total in /metrics")
	return 0
}
