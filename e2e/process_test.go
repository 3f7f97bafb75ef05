package e2e

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natsrv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// natterBinary builds cmd/natter once for the package's tests.
func natterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "natter-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "natter")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/natter-chat/natter/cmd/natter").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("go build: %s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build natter: %v", buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// gatewayProcess is `natter gateway` run as its own process against e's NATS.
type gatewayProcess struct {
	cmd  *exec.Cmd
	addr string
	logs *strings.Builder
}

func (e *env) startGatewayProcess(t *testing.T, args ...string) *gatewayProcess {
	t.Helper()
	bin := natterBinary(t)
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"gateway", "--nats-url", e.app.NATS().RoleURL(natsrv.RoleGateway), "--http", addr, "--jwt-secret", secret}, args...)...)
	logs := &strings.Builder{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &gatewayProcess{cmd: cmd, addr: addr, logs: logs}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("gateway process never became healthy")
	return nil
}

func (p *gatewayProcess) url() string { return "ws://" + p.addr + "/v1/ws" }
