package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// lockedBuffer collects a process's stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one natter process; it can be killed and started again with the
// same arguments (and so the same data directory and ports).
type proc struct {
	t     *testing.T
	name  string
	bin   string
	args  []string
	http  string // host:port of /healthz, /readyz
	probe string // the path that says it is up

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *lockedBuffer
	runs int
}

func newProc(t *testing.T, bin, name, probe string, args ...string) *proc {
	p := &proc{t: t, name: name, bin: bin, http: testbin.FreeAddr(t), probe: probe}
	p.args = append(args, "--http", p.http)
	t.Cleanup(func() {
		p.kill()
		if t.Failed() || os.Getenv("NATTER_CHAOS_LOGS") != "" {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.logs != nil {
				t.Logf("--- %s logs (last 4 KB) ---\n%s", p.name, tail(p.logs.String(), 4096))
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start runs the process and waits for its probe; it does not fail the
// test by itself when wait is false.
func (p *proc) start(wait bool) {
	p.t.Helper()
	p.mu.Lock()
	cmd := exec.Command(p.bin, p.args...)
	if p.logs == nil {
		p.logs = &lockedBuffer{}
	}
	fmt.Fprintf(p.logs, "=== start %d: %s\n", p.runs+1, strings.Join(p.args, " "))
	cmd.Stderr = p.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
	p.runs++
	p.mu.Unlock()
	if wait {
		p.waitUp(60 * time.Second)
	}
}

func (p *proc) waitUp(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	// A process takes its port before it serves: a probe must not wait
	// on a connection nobody answers yet.
	probe := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := probe.Get("http://" + p.http + p.probe)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p.exited() {
			p.t.Fatalf("%s exited before it was up:\n%s", p.name, tail(p.logs.String(), 4096))
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%s not up at %s after %s:\n%s", p.name, p.probe, timeout, tail(p.logs.String(), 4096))
}

func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && p.cmd.ProcessState != nil
}

// kill sends SIGKILL and reaps the process.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
}

// stop sends SIGTERM (a graceful shutdown) and reaps the process.
func (p *proc) stop() {
	p.signal(syscall.SIGTERM)
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// natsAuth is the shared credentials file the `natter nats` nodes write.
type natsAuth struct {
	Operator string `json:"operator"`
	Sys      string `json:"sys"`
}

func readAuth(t *testing.T, path string) natsAuth {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var a natsAuth
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}
