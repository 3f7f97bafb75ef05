package natsrv_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
)

// start starts a server on dir with a random port and shuts it down on
// cleanup.
func start(tb testing.TB, dir string) *natsrv.Server {
	tb.Helper()
	s, err := natsrv.Start(tb.Context(), natsrv.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() { shutdown(tb, s) })
	return s
}

func shutdown(tb testing.TB, s *natsrv.Server) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		tb.Errorf("Shutdown: %v", err)
	}
}

func readURL(tb testing.TB, dir, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// dial connects over TCP without reconnecting.
func dial(url string, opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(url, append([]nats.Option{nats.NoReconnect(), nats.Timeout(5 * time.Second)}, opts...)...)
}

func TestStartShutdown(t *testing.T) {
	t.Cleanup(natstest.CheckGoroutines(t))
	dir := t.TempDir()
	s, err := natsrv.Start(t.Context(), natsrv.Config{Listen: "127.0.0.1:-1", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := s.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	for range 2 { // idempotent
		shutdown(t, s)
	}
	if s.Server().Running() {
		t.Error("server still running after Shutdown")
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(s.ClientURL(), "nats://"), time.Second); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	opURL := readURL(t, dir, "nats.url")
	if opURL != s.OperatorURL() {
		t.Errorf("nats.url = %q, want OperatorURL %q", opURL, s.OperatorURL())
	}
	tests := []struct {
		name   string
		url    string
		opts   []nats.Option
		wantOK bool
	}{
		{"no credentials", s.ClientURL(), nil, false},
		{"wrong password", s.ClientURL(), []nats.Option{nats.UserInfo("operator", "wrong")}, false},
		{"unknown user", s.ClientURL(), []nats.Option{nats.UserInfo("nobody", "x")}, false},
		{"operator password for natter", s.ClientURL(),
			[]nats.Option{nats.UserInfo("natter", mustPassword(t, opURL))}, false},
		{"nats.url", opURL, nil, true},
		{"nats-sys.url", readURL(t, dir, "nats-sys.url"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := dial(tt.url, tt.opts...)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("connected, want rejection")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("err = %v, want %v", err, nats.ErrAuthorization)
			}
		})
	}
}

func mustPassword(tb testing.TB, rawURL string) string {
	tb.Helper()
	_, rest, _ := strings.Cut(rawURL, ":")
	_, rest, _ = strings.Cut(rest, ":")
	pass, _, ok := strings.Cut(rest, "@")
	if !ok {
		tb.Fatalf("no password in %q", rawURL)
	}
	return pass
}

func TestOperatorJetStream(t *testing.T) {
	dir := t.TempDir()
	start(t, dir)
	nc, err := dial(readURL(t, dir, "nats.url"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("hello")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	st, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, "t.1")
	if err != nil || string(msg.Data) != "hello" {
		t.Fatalf("GetLastMsgForSubject = %v, %v", msg, err)
	}
}

func TestFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by Start
	s := start(t, dir)
	for _, tt := range []struct {
		name string
		mode os.FileMode
	}{
		{".", 0o700 | os.ModeDir},
		{"jetstream", 0},
		{"nats.url", 0o600},
		{"nats-sys.url", 0o600},
		{"nats-auth.json", 0o600},
	} {
		fi, err := os.Stat(filepath.Join(dir, tt.name))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.mode != 0 && fi.Mode() != tt.mode {
			t.Errorf("%s: mode %v, want %v", tt.name, fi.Mode(), tt.mode)
		}
	}
	if got, want := readURL(t, dir, "nats.url"), s.OperatorURL(); got != want {
		t.Errorf("nats.url = %q, want %q", got, want)
	}
	if got, want := readURL(t, dir, "nats-sys.url"), s.SystemURL(); got != want {
		t.Errorf("nats-sys.url = %q, want %q", got, want)
	}
	for _, u := range []string{s.OperatorURL(), s.SystemURL()} {
		pass := mustPassword(t, u)
		if len(pass) < 24 || strings.Trim(pass, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
			t.Errorf("password %q: want >= 24 base62 characters", pass)
		}
	}
	if strings.Contains(s.ClientURL(), "@") {
		t.Errorf("ClientURL %q has credentials", s.ClientURL())
	}
	if s.OperatorURL() == s.SystemURL() || mustPassword(t, s.OperatorURL()) == mustPassword(t, s.SystemURL()) {
		t.Error("operator and sys share credentials")
	}
}

func TestRestartKeepsPasswordsAndData(t *testing.T) {
	dir := t.TempDir()
	s1, err := natsrv.Start(t.Context(), natsrv.Config{Listen: "127.0.0.1:-1", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, js := natstest.Connect(t, s1)
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "keep.a", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	op1, sys1 := s1.OperatorURL(), s1.SystemURL()
	shutdown(t, s1)

	s2 := start(t, dir)
	if mustPassword(t, s2.OperatorURL()) != mustPassword(t, op1) ||
		mustPassword(t, s2.SystemURL()) != mustPassword(t, sys1) {
		t.Error("passwords changed across restart")
	}
	nc2, err := dial(readURL(t, dir, "nats.url"))
	if err != nil {
		t.Fatalf("nats.url after restart: %v", err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	st, err := js2.Stream(ctx, "KEEP")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, "keep.a")
	if err != nil || string(msg.Data) != "kept" {
		t.Fatalf("message after restart = %v, %v", msg, err)
	}
}

func TestSystemAccount(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	nc, err := dial(s.SystemURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg, err := nc.Request("$SYS.REQ.SERVER.PING", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("server ping: %v", err)
	}
	if !strings.Contains(string(msg.Data), `"name":"natter"`) {
		t.Errorf("ping reply %s, want server name natter", msg.Data)
	}
	// The CHAT account sees no system subjects.
	op, err := dial(s.OperatorURL())
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if _, err := op.Request("$SYS.REQ.SERVER.PING", nil, 200*time.Millisecond); err == nil {
		t.Error("CHAT account got a reply to a system request")
	}
}

func TestInProcessConnect(t *testing.T) {
	s := natstest.Start(t)
	nc, js := natstest.Connect(t, s)
	if got := nc.ConnectedAddr(); got != "pipe" {
		t.Errorf("ConnectedAddr = %q, want the in-process pipe", got)
	}
	ctx := t.Context()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "B"})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2<<20) // conversation documents up to ~2 MiB
	if _, err := kv.Put(ctx, "k", big); err != nil {
		t.Fatalf("Put 2 MiB: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		cfg     natsrv.Config
		wantErr error
	}{
		{"no data dir", t.Context(), natsrv.Config{}, natsrv.ErrNoDataDir},
		{"bad listen", t.Context(), natsrv.Config{DataDir: t.TempDir(), Listen: "localhost"}, natsrv.ErrInvalidListen},
		{"bad port", t.Context(), natsrv.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:x"}, natsrv.ErrInvalidListen},
		{"bad monitor", t.Context(), natsrv.Config{DataDir: t.TempDir(), HTTPMonitor: "nope"}, natsrv.ErrInvalidListen},
		{"canceled", canceled, natsrv.Config{DataDir: t.TempDir()}, context.Canceled},
		{"port in use", t.Context(), natsrv.Config{DataDir: t.TempDir(), Listen: busy.Addr().String()}, natsrv.ErrNotReady},
		{"data dir is a file", t.Context(), natsrv.Config{DataDir: notDir, Listen: "127.0.0.1:-1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(natstest.CheckGoroutines(t))
			s, err := natsrv.Start(tt.ctx, tt.cfg)
			if err == nil {
				shutdown(t, s)
				t.Fatal("Start succeeded, want error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	s, err := natsrv.Start(t.Context(), natsrv.Config{
		Listen: "127.0.0.1:-1", DataDir: t.TempDir(), ServerName: "n1",
		SyncAlways: true, HTTPMonitor: "127.0.0.1:0", Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	shutdownDone := false
	t.Cleanup(func() {
		if !shutdownDone {
			shutdown(t, s)
		}
	})
	ns := s.Server()
	if !ns.JetStreamConfig().SyncAlways {
		t.Error("SyncAlways not set")
	}
	if ns.Name() != "n1" {
		t.Errorf("server name %q", ns.Name())
	}
	if ns.MonitorAddr() == nil {
		t.Error("no HTTP monitor")
	}
	nc, err := s.Connect("config")
	if err != nil {
		t.Fatal(err)
	}
	if got := nc.MaxPayload(); got != natsrv.DefaultMaxPayload {
		t.Errorf("MaxPayload = %d, want %d", got, natsrv.DefaultMaxPayload)
	}
	nc.Close()
	shutdown(t, s)
	shutdownDone = true
	out := logs.String()
	if !strings.Contains(out, "Server is ready") {
		t.Errorf("NATS logs not bridged into slog:\n%s", out)
	}
	if strings.Contains(out, "level=DEBUG") {
		t.Errorf("debug logs enabled:\n%s", out)
	}
}
