package natsrv_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
)

func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func serviceURL(s *natsrv.Server, name, pw string) string {
	host := strings.TrimPrefix(s.ClientURL(), "nats://")
	return natsrv.ServiceURLs([]string{host}, name, pw, false)
}

// Service users come and go on a running server: added ones connect with
// their own permissions only, a rotated password stops working (and its
// connection is closed), a removed user cannot connect.
func TestServiceUsersReload(t *testing.T) {
	s := start(t, t.TempDir())
	if _, err := dial(serviceURL(s, "alerts", "x")); err == nil {
		t.Fatal("an unknown service user connected")
	}
	in, err := s.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	js, err := jetstream.New(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep"}}); err != nil {
		t.Fatal(err)
	}
	pw1, pw2 := "passwordpasswordpassword1", "passwordpasswordpassword2"
	if err := s.SetServiceUsers([]natsrv.ServiceUser{{Name: "alerts", PasswordHash: hash(t, pw1)}, {Name: "billing", PasswordHash: hash(t, pw2)}}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	closed := make(chan struct{})
	nc, err := dial(serviceURL(s, "alerts", pw1), nats.CustomInboxPrefix(schema.ServiceInbox("alerts")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatalf("alerts cannot connect: %v", err)
	}
	defer nc.Close()
	for _, subj := range []string{"chat.msg.c1", "chat.api.svc.billing.post", "chat.api.history.after", "$JS.API.INFO"} {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") || !strings.Contains(err.Error(), subj) {
				t.Fatalf("publish %s: %v", subj, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("alerts published to %s without a permissions violation", subj)
		}
	}
	if _, err := nc.SubscribeSync("_INBOX.>"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("alerts subscribed to every inbox")
	}
	// Its own prefix is allowed: no violation.
	if err := nc.Publish(schema.ServiceAPI("alerts", schema.EndpointPost), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("its own prefix: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	// Rotate alerts: the connected client is cut off, the old password refused.
	pw3 := "passwordpasswordpassword3"
	if err := s.SetServiceUsers([]natsrv.ServiceUser{{Name: "alerts", PasswordHash: hash(t, pw3)}, {Name: "billing", PasswordHash: hash(t, pw2)}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection with the rotated password stayed open")
	}
	if _, err := dial(serviceURL(s, "alerts", pw1)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("old password after rotation: %v", err)
	}
	nc3, err := dial(serviceURL(s, "alerts", pw3))
	if err != nil {
		t.Fatalf("new password: %v", err)
	}
	nc3.Close()
	// Remove billing; roles keep working across reloads.
	if err := s.SetServiceUsers([]natsrv.ServiceUser{{Name: "alerts", PasswordHash: hash(t, pw3)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(serviceURL(s, "billing", pw2)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("removed service: %v", err)
	}
	// JetStream survives the reloads of its account: a stream made
	// before them is still there.
	if _, err := js.Stream(t.Context(), "KEEP"); err != nil {
		t.Fatalf("JetStream after reloads: %v", err)
	}
	gw, err := dial(s.RoleURL(natsrv.RoleGateway))
	if err != nil {
		t.Fatalf("a role after reloads: %v", err)
	}
	gw.Close()
	if err := s.SetServiceUsers([]natsrv.ServiceUser{{Name: "Bad", PasswordHash: "$2a$"}}); err == nil {
		t.Fatal("a bad service name was installed")
	}
}

// Service users on a server with random client and monitor ports.
func TestServiceUsersWithRandomPorts(t *testing.T) {
	s, err := natsrv.Start(t.Context(), natsrv.Config{Listen: "127.0.0.1:0", HTTPMonitor: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, s)
	pw := "passwordpasswordpassword1"
	if err := s.SetServiceUsers([]natsrv.ServiceUser{{Name: "alerts", PasswordHash: hash(t, pw)}}); err != nil {
		t.Fatal(err)
	}
	nc, err := dial(serviceURL(s, "alerts", pw))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}
