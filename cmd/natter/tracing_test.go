package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/testbin"
	"github.com/natter-chat/natter/tracing"
)

func TestTracingConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint string
		ratio    float64
		env      map[string]string
		export   bool
		err      string
	}{
		{name: "off by default", ratio: 1},
		{name: "flag", endpoint: "http://collector:4318", ratio: 1, export: true},
		{name: "env endpoint", ratio: 1, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, export: true},
		{name: "env traces endpoint", ratio: 1, env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, export: true},
		{name: "env exporter otlp", ratio: 1, env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, export: true},
		{name: "env exporter none", ratio: 1, env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "sdk disabled", ratio: 1, env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "flag wins over none", endpoint: "http://c:4318", ratio: 1, env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}, export: true},
		{name: "other exporter", ratio: 1, env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: "otlp or none"},
		{name: "grpc refused", endpoint: "http://c:4317", ratio: 1, env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, err: "over HTTP only"},
		{name: "grpc ignored when off", ratio: 1, env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{name: "bad endpoint", endpoint: "collector:4318", ratio: 1, err: "--otlp-endpoint"},
		{name: "bad ratio", ratio: 1.5, err: "--trace-sample"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tracingConfig(tc.endpoint, tc.ratio, func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Export != tc.export {
				t.Fatalf("export = %v, want %v", c.Export, tc.export)
			}
		})
	}
	cfg, err := serveConfig([]string{"--data", t.TempDir(), "--dev", "--otlp-endpoint", "http://127.0.0.1:4318", "--trace-sample", "0.25"}, io.Discard, "serve")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Tracing.Export || cfg.Tracing.Endpoint != "http://127.0.0.1:4318" || cfg.Tracing.SampleRatio != 0.25 {
		t.Fatalf("tracing config = %+v", cfg.Tracing)
	}
}

// TestServeExportsTraces runs natter serve with --otlp-endpoint pointing
// at an OTLP/HTTP receiver and checks that a message's spans arrive there,
// flushed by SIGTERM at the latest, in one trace.
func TestServeExportsTraces(t *testing.T) {
	var (
		mu    sync.Mutex
		spans = map[string][]string{} // name -> trace ids
		paths []string
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("collector got a body that is not OTLP protobuf: %v", err)
		}
		mu.Lock()
		paths = append(paths, r.URL.Path)
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[s.Name] = append(spans[s.Name], string(s.TraceId))
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	}))
	defer collector.Close()

	bin := testbin.Natter(t)
	data := t.TempDir()
	httpAddr := testbin.FreeAddr(t)
	serve := exec.Command(bin, "serve", "--dev", "--data", data, "--http", httpAddr, "--nats", testbin.FreeAddr(t),
		"--otlp-endpoint", collector.URL)
	var logs strings.Builder
	serve.Stderr = &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
		if t.Failed() {
			t.Logf("serve logs:\n%s", logs.String())
		}
	})
	waitHealthy(t, httpAddr)
	secret, err := os.ReadFile(filepath.Join(data, devSecretFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(user string) *client.Client {
		tok, err := auth.IssueHS256(strings.TrimSpace(string(secret)), user, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(ctx, "ws://"+httpAddr+"/v1/ws", client.Options{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	alice, bob := dial("alice"), dial("bob")
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, conv.Conv, "m1", map[string]string{"text": "traced"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.NextEvent(ctx, "message"); err != nil {
		t.Fatal(err)
	}
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("serve exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30 s of SIGTERM")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{tracing.SpanSend, tracing.SpanPublish, tracing.SpanFanout, tracing.SpanDeliver, tracing.SpanPush, tracing.SpanAppend}
	for _, name := range want {
		if spans[name] == nil {
			t.Fatalf("the collector got no %s span; got %v at %v", name, spans, paths)
		}
	}
	// One send, one trace: publish, fan-out, deliver and push in it.
	if len(spans[tracing.SpanSend]) != 1 {
		t.Fatalf("%d send spans, want 1", len(spans[tracing.SpanSend]))
	}
	for _, name := range want[1:5] {
		if !slices.Contains(spans[name], spans[tracing.SpanSend][0]) {
			t.Errorf("no %s span in the send's trace", name)
		}
	}
	if i := slices.IndexFunc(paths, func(p string) bool { return p != "/v1/traces" }); i >= 0 {
		t.Errorf("exported to %s, want /v1/traces", paths[i])
	}
}
