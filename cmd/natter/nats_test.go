package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/internal/testbin"
	"github.com/natter-chat/natter/nats/schema"
)

// startProc runs the natter binary with args until the test ends; its
// output is logged when the test fails.
func startProc(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(testbin.Natter(t), args...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("natter %s:\n%s", args[0], logs.String())
		}
	})
}

// natter nats owns the schema: it creates CHAT with its own flags (the hot
// window in the metadata, no MaxAge) and publishes the trimmer's metrics;
// a role started against it with a smaller --hot-window and other
// settings, even as the operator, changes nothing of CHAT.
func TestNATSNodeOwnsTheSchema(t *testing.T) {
	data := t.TempDir()
	nodeHTTP := testbin.FreeAddr(t)
	startProc(t, "nats", "--listen", testbin.FreeAddr(t), "--http", nodeHTTP, "--data", data,
		"--hot-window", "1h", "--dedupe-window", "2m", "--trim-interval", "200ms", "--log-level", "warn")
	waitHealthy(t, nodeHTTP)
	url, err := os.ReadFile(filepath.Join(data, "nats.url"))
	if err != nil {
		t.Fatal(err)
	}
	operator := strings.TrimSpace(string(url))
	nc, err := nats.Connect(operator)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	chat := func() jetstream.StreamConfig {
		t.Helper()
		st, err := js.Stream(ctx, schema.StreamChat)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := js.Consumer(ctx, schema.StreamChat, schema.ConsumerPush)
		if err == nil {
			break // the last thing Ensure makes
		}
		if time.Now().After(deadline) {
			t.Fatalf("natter nats never made the schema: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := chat()
	if w, ok := schema.HotWindowOf(before); !ok || w != time.Hour || before.MaxAge != 0 || before.Duplicates != 2*time.Minute || before.Replicas != 1 {
		t.Fatalf("CHAT as natter nats made it: %+v", before)
	}

	roleHTTP := testbin.FreeAddr(t)
	startProc(t, "presence", "--nats-url", operator, "--http", roleHTTP,
		"--hot-window", "2s", "--dedupe-window", "1s", "--replicas", "1", "--log-level", "warn")
	waitHealthy(t, roleHTTP)
	if after := chat(); !reflect.DeepEqual(after, before) {
		t.Fatalf("a role changed CHAT:\nbefore %+v\nafter  %+v", before, after)
	}

	resp, err := http.Get("http://" + nodeHTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, m := range []string{"natter_history_lag_seconds 0", "natter_retention_held_messages 0", "natter_retention_errors_total 0"} {
		if !strings.Contains(string(body), m+"\n") {
			t.Errorf("the node's /metrics lacks %q", m)
		}
	}
}
