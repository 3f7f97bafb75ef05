package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/internal/testbin"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
)

// natter history rebuild refills a wiped embedded store from the JetStream
// store of a stopped natter serve, and a second run changes nothing.
func TestHistoryRebuild(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := natsrv.Start(ctx, natsrv.Config{Listen: "127.0.0.1:-1", DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		body := fmt.Sprintf(`{"sender":"u1","client_id":"k%d","body":{"text":"m%d"}}`, i, i)
		if _, err := js.Publish(ctx, schema.Msg(fmt.Sprintf("c%d", i%3)), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, schema.Msg("c0"), []byte(`not json`)); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// A store that was there and got lost.
	if err := os.MkdirAll(filepath.Join(data, "history"), 0o700); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		var out, errOut bytes.Buffer
		if err := run([]string{"history", "rebuild", "--data", data}, &out, &errOut); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, errOut.String())
		}
		if want := "from CHAT seqs 1..26: read 26 messages, appended 25 rows"; !strings.Contains(out.String(), want) {
			t.Fatalf("run %d printed %q, want it to contain %q", i, out.String(), want)
		}
	}
	store, err := localstore.New(localstore.Config{Dir: filepath.Join(data, "history")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rows, _, err := store.After(ctx, "c1", 0, 100)
	if err != nil || len(rows) != 8 || rows[0].Seq != 2 || string(rows[7].Body) != `{"text":"m22"}` {
		t.Fatalf("c1 after the rebuild: %d rows, %v", len(rows), err)
	}
}

// A second history writer on another embedded store of the same cluster
// fails at start, naming the holder; with natter serve's writer stopped
// it starts.
func TestSecondEmbeddedHistoryWriterFails(t *testing.T) {
	bin := testbin.Natter(t)
	data := t.TempDir()
	httpAddr := testbin.FreeAddr(t)
	serve := exec.Command(bin, "serve", "--dev", "--data", data, "--http", httpAddr, "--nats", testbin.FreeAddr(t), "--log-level", "warn")
	var logs strings.Builder
	serve.Stderr = &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = serve.Process.Kill()
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("serve logs:\n%s", logs.String())
		}
	})
	waitHealthy(t, httpAddr)
	url, err := os.ReadFile(filepath.Join(data, "nats-history.url"))
	if err != nil {
		t.Fatal(err)
	}
	second := exec.Command(bin, "history", "--nats-url", strings.TrimSpace(string(url)),
		"--data", t.TempDir(), "--http", testbin.FreeAddr(t), "--log-level", "warn")
	var out strings.Builder
	second.Stdout, second.Stderr = &out, &out
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- second.Wait() }()
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(out.String(), "another writer holds the history writer lease") ||
			!strings.Contains(out.String(), filepath.Join(data, "history")) {
			t.Fatalf("second writer exited with %v:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = second.Process.Kill()
		<-exited
		t.Fatalf("a second writer on another embedded store is still running after 30 s:\n%s", out.String())
	}
}
