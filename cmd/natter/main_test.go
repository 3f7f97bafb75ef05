package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("natter serve never became healthy")
}

// TestServeAsAProcess runs the README's flow against the real binary: serve
// --dev, tokens, two terminal chat clients, nats.url, and SIGTERM.
func TestServeAsAProcess(t *testing.T) {
	bin := testbin.Natter(t)
	data := t.TempDir()
	httpAddr, natsAddr := testbin.FreeAddr(t), testbin.FreeAddr(t)

	// Without a secret and without --dev it refuses to start.
	out, err := exec.Command(bin, "serve", "--data", data, "--http", httpAddr, "--nats", natsAddr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "NATTER_JWT_SECRET") {
		t.Fatalf("serve without a secret: %v, %s", err, out)
	}

	serve := exec.Command(bin, "serve", "--dev", "--data", data, "--http", httpAddr, "--nats", natsAddr)
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

	fi, err := os.Stat(filepath.Join(data, "nats.url"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("nats.url: %v, %v", fi, err)
	}
	// What the README tells an operator to run works as written.
	urlBytes, err := os.ReadFile(filepath.Join(data, "nats.url"))
	if err != nil {
		t.Fatal(err)
	}
	natsURL := strings.TrimSpace(string(urlBytes))
	for _, args := range [][]string{{"stream", "ls"}, {"stream", "info", "CHAT"}, {"kv", "ls"}, {"consumer", "report", "CHAT"}} {
		out, err := exec.Command("go", append([]string{"tool", "nats", "--server", natsURL}, args...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "CHAT") && !strings.Contains(string(out), "CONVERSATIONS") {
			t.Fatalf("go tool nats %v: %v\n%s", args, err, out)
		}
	}
	tok, err := exec.Command(bin, "token", "--user", "alice", "--ttl", "1h", "--data", data).Output()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+httpAddr+"/v1/ws", client.Options{Token: strings.TrimSpace(string(tok)), HeaderAuth: true})
	if err != nil {
		t.Fatalf("dial with natter token's token: %v", err)
	}
	defer c.Close()

	// Two terminals chat.
	url := "ws://" + httpAddr + "/v1/ws"
	bob := exec.Command(bin, "chat", "--url", url, "--data", data, "--user", "bob", "--with", "alice")
	bobIn, _ := bob.StdinPipe()
	bobOut, _ := bob.StdoutPipe()
	if err := bob.Start(); err != nil {
		t.Fatal(err)
	}
	defer bob.Process.Kill()
	bobLines := bufio.NewScanner(bobOut)
	conv := strings.Fields(waitLine(t, bobLines, "conversation "))[1]

	alice := exec.Command(bin, "chat", "--url", url, "--data", data, "--user", "alice", "--with", "bob")
	aliceIn, _ := alice.StdinPipe()
	aliceOut, _ := alice.StdoutPipe()
	if err := alice.Start(); err != nil {
		t.Fatal(err)
	}
	defer alice.Process.Kill()
	aliceLines := bufio.NewScanner(aliceOut)
	waitLine(t, aliceLines, "conversation ")
	if _, err := io.WriteString(aliceIn, "hello bob\n"); err != nil {
		t.Fatal(err)
	}
	waitLine(t, bobLines, "alice: hello bob")
	if _, err := io.WriteString(bobIn, "hi alice\n"); err != nil {
		t.Fatal(err)
	}
	waitLine(t, aliceLines, "bob: hi alice")

	// An internal service publishes with nats req as the service user, as
	// the README shows; the PubAck's seq is the seq the terminals print.
	serviceURL, err := os.ReadFile(filepath.Join(data, "nats-service.url"))
	if err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("go", "tool", "nats", "--server", strings.TrimSpace(string(serviceURL)), "--inbox-prefix", "_INBOX.service",
		"req", "chat.msg."+conv,
		`{"sender":"svc-x","client_id":"1","body":{"text":"deploy done"}}`, "-H", "Nats-Msg-Id:svc-x:1").CombinedOutput()
	if err != nil {
		t.Fatalf("nats req: %v\n%s", err, out)
	}
	var pubAck struct {
		Seq uint64 `json:"seq"`
	}
	if i := strings.Index(string(out), "{"); i < 0 || json.Unmarshal([]byte(strings.TrimSpace(string(out)[i:])), &pubAck) != nil || pubAck.Seq == 0 {
		t.Fatalf("nats req printed no PubAck: %s", out)
	}
	waitLine(t, bobLines, fmt.Sprintf("#%d svc-x: deploy done", pubAck.Seq))

	// The rest of docs/operations.md's commands.
	sysURL, err := os.ReadFile(filepath.Join(data, "nats-sys.url"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		server string
		args   []string
		want   string
	}{
		{natsURL, []string{"stream", "get", "CHAT", "--last-for", "chat.msg." + conv + ".*"}, "deploy done"}, // stored as chat.msg.<conv>.<partition>
		{natsURL, []string{"kv", "get", "CONVERSATIONS", "c." + conv}, `"kind":"direct"`},
		{natsURL, []string{"kv", "ls", "PRESENCE"}, "u.alice"},
		{strings.TrimSpace(string(sysURL)), []string{"server", "report", "jetstream"}, "natter"},
		{natsURL, []string{"micro", "ls"}, "history"},
		{natsURL, []string{"req", "chat.api.history.last", `{"conv":"` + conv + `"}`}, fmt.Sprintf(`"seq":%d`, pubAck.Seq)},
	} {
		out, err := exec.Command("go", append([]string{"tool", "nats", "--server", c.server}, c.args...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.want) {
			t.Fatalf("go tool nats %v: %v\n%s", c.args, err, out)
		}
	}
	// No push provider: `consumer report CHAT` shows pushnotify with
	// nothing unprocessed once the messages are in (docs/operations.md).
	for deadline := time.Now().Add(20 * time.Second); ; {
		out, err := exec.Command("go", "tool", "nats", "--server", natsURL, "consumer", "report", "CHAT").CombinedOutput()
		if err != nil {
			t.Fatalf("go tool nats consumer report CHAT: %v\n%s", err, out)
		}
		if n := reportColumn(string(out), "pushnotify", "Unprocessed"); n == "0" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("consumer report CHAT: pushnotify has %q unprocessed without a push provider, want 0\n%s", n, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// docs/operations.md's admin commands, as written.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "show", "bob"}, conv},
		{[]string{"conv", "show", conv}, "MEMBERS (2)"},
		{[]string{"stream", "lag"}, "fanout-0"},
		{[]string{"user", "show", "alice", "--json"}, `"role": "member"`},
	} {
		out, err := exec.Command(bin, append([]string{"admin", "--data", data}, c.args...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.want) {
			t.Fatalf("natter admin %v: %v\n%s", c.args, err, out)
		}
	}
	// The kick with the nats CLI, as documented: carol's connection
	// closes with 4009.
	carolTok, err := exec.Command(bin, "token", "--user", "carol", "--ttl", "1h", "--data", data).Output()
	if err != nil {
		t.Fatal(err)
	}
	// A context of its own: the one above was made a minute of admin
	// commands ago and may have run out on a loaded machine.
	carolCtx, carolCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer carolCancel()
	carol, err := client.Dial(carolCtx, url, client.Options{Token: strings.TrimSpace(string(carolTok))})
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	if out, err := exec.Command("go", "tool", "nats", "--server", natsURL, "pub", "chat.user.carol.admin.kick", "").CombinedOutput(); err != nil {
		t.Fatalf("nats pub kick: %v\n%s", err, out)
	}
	select {
	case <-carol.Done():
		if st := carol.CloseStatus(); st != 4009 {
			t.Fatalf("kicked client closed with %d, want 4009", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the kick did not close carol's connection")
	}

	watch := exec.Command("go", "tool", "nats", "--server", natsURL, "kv", "watch", "PRESENCE")
	watchOut, _ := watch.StdoutPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	waitLine(t, bufio.NewScanner(watchOut), "PRESENCE > u.")
	_ = watch.Process.Kill()
	_ = watch.Wait()
	_ = aliceIn.Close()
	_ = bobIn.Close()

	// SIGTERM: the gateway closes sockets with 1001 and the process exits 0.
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("serve exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30 s of SIGTERM")
	}
	select {
	case <-c.Done():
		if st := c.CloseStatus(); st != 1001 {
			t.Fatalf("client closed with %d, want 1001", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client not closed by the shutdown")
	}
}

// waitLine reads lines until one contains want and returns it.
func waitLine(t *testing.T, s *bufio.Scanner, want string) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		for s.Scan() {
			if strings.Contains(s.Text(), want) {
				found <- s.Text()
				return
			}
		}
		close(found)
	}()
	select {
	case line, ok := <-found:
		if !ok {
			t.Fatalf("output ended before %q", want)
		}
		return line
	case <-time.After(60 * time.Second):
		t.Fatalf("no line with %q in 60 s", want)
	}
	return ""
}

// reportColumn is the cell of column col in the row of consumer in the
// table `nats consumer report` prints, "" when either is missing.
func reportColumn(table, consumer, col string) string {
	idx := -1
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "│")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if j := slices.Index(cells, col); j >= 0 {
			idx = j
		}
		if idx >= 0 && idx < len(cells) && len(cells) > 1 && cells[1] == consumer {
			return cells[idx]
		}
	}
	return ""
}
