package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
	"github.com/natter-chat/natter/pushnotify/apns"
	"github.com/natter-chat/natter/pushnotify/pushtest"
	"github.com/natter-chat/natter/pushnotify/webpush"
)

const (
	apnsTopic = "chat.natter.app"
	apnsToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	pushWin   = 600 * time.Millisecond
)

// providers are the fake APNs and Web Push service a test's Natter sends to.
type providers struct {
	apns *pushtest.APNs
	web  *pushtest.WebPush
	sub  string // u2's browser subscription
}

func newProviders(t testing.TB) *providers {
	return newProvidersFrom(t, pushtest.NewAPNs(t, pushtest.APNsConfig{TeamID: "TEAM123456", KeyID: "KEY1234567", Topic: apnsTopic}), pushtest.NewWebPush(t, nil))
}

func newProvidersFrom(t testing.TB, a *pushtest.APNs, w *pushtest.WebPush) *providers {
	return &providers{apns: a, web: w, sub: w.Subscribe()}
}

// config points Natter's push at the fakes.
func (p *providers) config(t testing.TB, private bool) func(*app.Config) {
	vapid, _, err := webpush.GenerateVAPIDKey()
	if err != nil {
		t.Fatal(err)
	}
	return func(c *app.Config) {
		c.Push = app.PushConfig{
			APNs: &apns.Config{Endpoint: p.apns.URL(), Topic: apnsTopic, TeamID: "TEAM123456", KeyID: "KEY1234567",
				Key: p.apns.Key(), TLSConfig: p.apns.TLSConfig()},
			WebPush: &webpush.Config{PrivateKey: vapid, Subject: "mailto:ops@natter.example", HTTPClient: p.web.Client()},
			// The fake push service listens on 127.0.0.1: only tests allow that.
			WebPushEndpoints: webpush.EndpointPolicy{AllowHosts: []string{"127.0.0.1"}, AllowPrivate: true},
			Dispatcher: pushnotify.DispatcherConfig{Private: private, Window: pushWin,
				Policy: pushnotify.Policy{BaseDelay: 20 * time.Millisecond}},
		}
	}
}

// counts is how many notifications each fake delivered.
func (p *providers) counts() (apnsN, webN int) {
	return len(p.apns.Delivered()), len(p.web.Delivered())
}

// waitCounts waits until the fakes delivered exactly want each, then
// checks for a while that nothing more arrives.
func (p *providers) waitCounts(t *testing.T, wantAPNs, wantWeb int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, w := p.counts()
		if a == wantAPNs && w == wantWeb {
			break
		}
		if time.Now().After(deadline) || a > wantAPNs || w > wantWeb {
			t.Fatalf("delivered apns %d, webpush %d; want %d, %d", a, w, wantAPNs, wantWeb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * pushWin)
	if a, w := p.counts(); a != wantAPNs || w != wantWeb {
		t.Fatalf("later delivered apns %d, webpush %d; want %d, %d", a, w, wantAPNs, wantWeb)
	}
}

// waitOnline polls a presence query until user is online (or offline).
func waitOnline(t *testing.T, c *client.Client, user string, online bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := request(t, c, map[string]any{"type": "presence", "users": []string{user}})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := m["users"].(map[string]any)[user].(map[string]any)
		if u != nil && u["online"] == online {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became online=%v: %v", user, online, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// devices lists user's devices over a connection of its own.
func devices(t *testing.T, e *env, user string) []map[string]any {
	t.Helper()
	c := e.dial(t, user)
	defer c.Close()
	m, err := request(t, c, map[string]any{"type": "devices"})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, d := range m["devices"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// setupPush has u2 register a Web Push and an APNs device, creates a
// conversation with u1 (a group named Team when group is set), takes u2
// offline and returns u1's connection and the conversation.
func setupPush(t *testing.T, e *env, p *providers, group bool) (*client.Client, string) {
	t.Helper()
	ctx := ctxT(t)
	c1, c2 := e.dial(t, "u1"), e.dial(t, "u2")
	for _, d := range []map[string]any{
		{"type": "register_device", "platform": "webpush", "token": p.sub},
		{"type": "register_device", "platform": "apns", "token": apnsToken},
	} {
		if _, err := request(t, c2, d); err != nil {
			t.Fatalf("register_device: %v", err)
		}
	}
	var conv *struct{ Conv string }
	if group {
		c, err := c1.CreateGroup(ctx, "Team", "u2")
		if err != nil {
			t.Fatal(err)
		}
		conv = &struct{ Conv string }{c.Conv}
	} else {
		// u2 opens it, so it is no request to u2 (one would notify only
		// once); u1's first send accepts it.
		c, err := c2.CreateDirect(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		conv = &struct{ Conv string }{c.Conv}
	}
	_ = c2.Close()
	waitOnline(t, c1, "u2", false)
	return c1, conv.Conv
}

func send(t *testing.T, c *client.Client, conv, msg string) {
	t.Helper()
	if _, err := c.Send(ctxT(t), conv, client.NewClientID(), text(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestPushToOfflineDevices(t *testing.T) {
	p := newProviders(t)
	e := start(t, p.config(t, false))
	c1, conv := setupPush(t, e, p, false)
	send(t, c1, conv, "lunch at noon?")
	p.waitCounts(t, 1, 1)

	aps := p.apns.Delivered()[0]
	alert := aps.Body["aps"].(map[string]any)["alert"].(map[string]any)
	if aps.Token != apnsToken || alert["title"] != "u1" || alert["body"] != "lunch at noon?" || aps.Body["conv"] != conv {
		t.Errorf("APNs got token %s, %v", aps.Token, aps.Body)
	}
	web := p.web.Delivered()[0].Payload
	if web["title"] != "u1" || web["body"] != "lunch at noon?" || web["conv"] != conv || web["count"] != float64(1) {
		t.Errorf("Web Push got %v", web)
	}
	if got := devices(t, e, "u2"); len(got) != 2 || got[0]["platform"] != "webpush" || len(got[0]["device_id"].(string)) != 16 {
		t.Errorf("devices = %v", got)
	} else if raw, _ := json.Marshal(got); strings.Contains(string(raw), "keys") || strings.Contains(string(raw), apnsToken) {
		t.Errorf("devices echo tokens: %s", raw)
	}
}

func TestPushPrivateHasNoText(t *testing.T) {
	p := newProviders(t)
	e := start(t, p.config(t, true))
	c1, conv := setupPush(t, e, p, false)
	send(t, c1, conv, "the secret plan")
	p.waitCounts(t, 1, 1)
	for _, raw := range []any{p.apns.Delivered()[0].Body, p.web.Delivered()[0].Payload} {
		b, _ := json.Marshal(raw)
		if strings.Contains(string(b), "secret") || !strings.Contains(string(b), "New message") {
			t.Errorf("private notification %s", b)
		}
	}
}

func TestPushNotWhenOnlineOrMuted(t *testing.T) {
	p := newProviders(t)
	e := start(t, p.config(t, false))
	c1, conv := setupPush(t, e, p, false)

	c2 := e.dial(t, "u2")
	waitOnline(t, c1, "u2", true)
	send(t, c1, conv, "you are online")
	nextMessage(t, c2)
	p.waitCounts(t, 0, 0)

	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if _, err := request(t, c2, map[string]any{"type": "mute", "conv": conv, "until": until}); err != nil {
		t.Fatalf("mute: %v", err)
	}
	_ = c2.Close()
	waitOnline(t, c1, "u2", false)
	send(t, c1, conv, "muted")
	p.waitCounts(t, 0, 0)

	c2 = e.dial(t, "u2")
	if _, err := request(t, c2, map[string]any{"type": "mute", "conv": conv, "until": nil}); err != nil {
		t.Fatalf("unmute: %v", err)
	}
	_ = c2.Close()
	waitOnline(t, c1, "u2", false)
	send(t, c1, conv, "unmuted")
	p.waitCounts(t, 1, 1)

	// Muting a conversation you are not in is forbidden.
	c3 := e.dial(t, "u3")
	_, err := request(t, c3, map[string]any{"type": "mute", "conv": conv, "until": until})
	wantCode(t, err, "forbidden")
}

func TestPushInvalidTokenRemovesDevice(t *testing.T) {
	p := newProviders(t)
	e := start(t, p.config(t, false))
	c1, conv := setupPush(t, e, p, false)
	p.apns.Script(pushtest.Reply{Status: 410, Reason: "Unregistered"})
	send(t, c1, conv, "hello")
	p.waitCounts(t, 0, 1)
	got := devices(t, e, "u2")
	if len(got) != 1 || got[0]["platform"] != "webpush" {
		t.Fatalf("devices after 410 = %v, want only the webpush one", got)
	}
}

func TestPushRetriesUnavailable(t *testing.T) {
	p := newProviders(t)
	e := start(t, p.config(t, false))
	c1, conv := setupPush(t, e, p, false)
	p.web.Script(pushtest.Reply{Status: 503, Header: map[string]string{"Retry-After": "0"}})
	send(t, c1, conv, "hello")
	p.waitCounts(t, 1, 1)
	if n := len(p.web.Received()); n != 2 {
		t.Errorf("push service saw %d requests, want 2 (503, then 201)", n)
	}
}

func TestPushCoalesces(t *testing.T) {
	p := newProviders(t)
	e := start(t, p.config(t, false))
	c1, conv := setupPush(t, e, p, true)
	for _, m := range []string{"one", "two", "three"} {
		send(t, c1, conv, m)
	}
	p.waitCounts(t, 1, 1)
	web := p.web.Delivered()[0].Payload
	if web["title"] != "Team" || web["body"] != "3 new messages in Team" || web["count"] != float64(3) {
		t.Errorf("coalesced notification %v", web)
	}
}

func TestPushRestartDoesNotRenotify(t *testing.T) {
	p := newProviders(t)
	dir := t.TempDir()
	onDir := func(c *app.Config) {
		c.Embedded.DataDir = filepath.Join(dir, "nats")
		c.History.Dir = filepath.Join(dir, "history")
	}
	e := start(t, p.config(t, false), onDir)
	c1, conv := setupPush(t, e, p, false)
	send(t, c1, conv, "before the restart")
	// Stop while the window is still open: the dispatcher flushes it.
	// Wait until the consumer delivered the message to the dispatcher
	// first. Without that wait, about half the runs stopped before the
	// dispatcher took it, and then the restarted process did not send it
	// within 10 s (a known gap, cause not established: docs/operations.md,
	// "Push notifications").
	waitPushDelivered(t, e)
	_ = c1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Usually the dispatcher holds the message in its window and flushes
	// it on shutdown. If the shutdown came before the dispatcher took the
	// message, it was not acknowledged and the next run sends it. Either
	// way each device is notified exactly once.
	switch a, w := p.counts(); {
	case a == 1 && w == 1:
		t.Log("the window was flushed on shutdown")
	case a == 0 && w == 0:
		t.Log("the shutdown came before the dispatcher took the message: the restart sends it")
	default:
		t.Fatalf("after shutdown delivered apns %d, webpush %d; want 1, 1 (flushed) or 0, 0 (left for the next run)", a, w)
	}

	e = start(t, p.config(t, false), onDir)
	p.waitCounts(t, 1, 1)
	c1 = e.dial(t, "u1")
	send(t, c1, conv, "after the restart")
	p.waitCounts(t, 2, 2)
}

// A Web Push endpoint is where the server will POST: register_device
// refuses one on a loopback, private, link-local or metadata address, or
// off the push services' allow-list, with bad_request saying why (the
// server default, no test exceptions).
func TestPushDeviceEndpointRefused(t *testing.T) {
	e := start(t)
	web := pushtest.NewWebPush(t, nil)
	sub, err := webpush.ParseSubscription(web.Subscribe())
	if err != nil {
		t.Fatal(err)
	}
	c := e.dial(t, "u1")
	for _, tc := range []struct{ endpoint, why string }{
		{sub.Endpoint, "is not a public address"}, // the fake service, on https://127.0.0.1:<port>
		{"https://10.0.0.1/push/1", "10.0.0.1 is not a public address"},
		{"https://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public address"},
		{"https://[::1]:8443/push/1", "::1 is not a public address"},
		{"https://[::ffff:127.0.0.1]/push/1", "is not a public address"},
		{"https://push.attacker.example/push/1", "host push.attacker.example is not a known push service"},
	} {
		s := *sub
		s.Endpoint = tc.endpoint
		token, _ := json.Marshal(s)
		_, err := request(t, c, map[string]any{"type": "register_device", "platform": "webpush", "token": string(token)})
		var perr *protocol.Error
		if !errors.As(err, &perr) || perr.Code != protocol.CodeBadRequest ||
			!strings.Contains(perr.Message, "Web Push endpoint not allowed") || !strings.Contains(perr.Message, tc.why) {
			t.Errorf("register_device %s: %v, want bad_request saying %q", tc.endpoint, err, tc.why)
		}
	}
	if got := devices(t, e, "u1"); len(got) != 0 {
		t.Fatalf("devices after refusals = %v, want none", got)
	}
}

// A message request notifies its recipient once, when it is opened, and
// not for each of the requester's messages.
func TestPushRequestNotifiesOnce(t *testing.T) {
	p := newProviders(t)
	e := start(t, p.config(t, false))
	ctx := ctxT(t)
	u2 := e.dial(t, "u2")
	for _, d := range []map[string]any{
		{"type": "register_device", "platform": "webpush", "token": p.sub},
		{"type": "register_device", "platform": "apns", "token": apnsToken},
	} {
		if _, err := request(t, u2, d); err != nil {
			t.Fatalf("register_device: %v", err)
		}
	}
	// A contact of u2 watches u2 go offline. u2 opens that conversation:
	// a request to u2 would notify u2 if pushnotify saw it before u2's
	// presence.
	watcher := e.dial(t, "u3")
	contacts(t, e, u2, "u3")
	_ = u2.Close()
	waitOnline(t, watcher, "u2", false)

	stranger := e.dial(t, "u1")
	d, err := stranger.CreateDirect(ctx, "u2")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		send(t, stranger, d.Conv, "buy now "+strconv.Itoa(i))
	}
	p.waitCounts(t, 1, 1)
	web := p.web.Delivered()[0].Payload
	if web["body"] != "New message request" || web["conv"] != d.Conv {
		t.Errorf("Web Push got %v", web)
	}
	if b, _ := json.Marshal(p.apns.Delivered()[0].Body); strings.Contains(string(b), "buy now") {
		t.Errorf("the request notification carries a message: %s", b)
	}
}

// waitPushDelivered waits until the push consumer of every message stream
// has delivered everything stored to the dispatcher.
func waitPushDelivered(t *testing.T, e *env) {
	t.Helper()
	_, js := e.operatorJS(t)
	ctx := ctxT(t)
	l, err := schema.ReadLayout(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		for _, name := range l.ChatStreams() {
			c, err := js.Consumer(ctx, name, schema.ConsumerPush)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending == 0 && info.Delivered.Stream == 0 {
				return false
			}
		}
		return true
	})
}
