package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/testbin"
	"github.com/natter-chat/natter/nats/natsrv"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// gatewayProcess is `natter gateway` run as its own process against e's NATS.
type gatewayProcess struct {
	cmd  *exec.Cmd
	addr string
	logs *strings.Builder
}

func (e *env) startGatewayProcess(t *testing.T, args ...string) *gatewayProcess {
	t.Helper()
	bin := testbin.Natter(t)
	addr := testbin.FreeAddr(t)
	cmd := exec.Command(bin, append([]string{"gateway", "--nats-url", e.app.NATS().RoleURL(natsrv.RoleGateway), "--http", addr, "--jwt-secret", secret, "--data", t.TempDir()}, args...)...)
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
