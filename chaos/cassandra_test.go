package chaos

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/history/scyllastore/scyllatest"
	"github.com/natter-chat/natter/internal/testbin"
)

// cassandra is a dedicated Cassandra for the last phase, started by
// deploy/cassandra/start.sh on its own ports and run directory so that
// stopping it harms no other test; CASSANDRA_KEEP=1 makes stop.sh and
// start.sh keep and reuse its data.
type cassandra struct {
	env   []string
	hosts string
	err   error
	ready chan struct{}
}

func scriptDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "deploy", "cassandra")
}

// startCassandra starts it in the background; wait returns its host:port.
func startCassandra(t *testing.T) *cassandra {
	c := &cassandra{ready: make(chan struct{})}
	run := filepath.Join(t.TempDir(), "cassandra")
	c.env = append(os.Environ(),
		"CASSANDRA_PORT="+port(testbin.FreeAddr(t)),
		"CASSANDRA_STORAGE_PORT="+port(testbin.FreeAddr(t)),
		"CASSANDRA_RUN_DIR="+run,
		"CASSANDRA_HEAP="+envOr("NATTER_CHAOS_CASSANDRA_HEAP", "768m"),
	)
	if _, err := exec.LookPath(envOr("JAVA", "java")); err != nil {
		c.err = err
		close(c.ready)
		return c
	}
	go func() {
		defer close(c.ready)
		c.hosts, c.err = c.script("start.sh")
	}()
	t.Cleanup(func() {
		<-c.ready
		_, _ = c.script("stop.sh") // removes the run directory
	})
	return c
}

func port(hostport string) string { return hostport[strings.LastIndexByte(hostport, ':')+1:] }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c *cassandra) script(name string, extraEnv ...string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(scriptDir(), name))
	cmd.Env = append(append([]string(nil), c.env...), extraEnv...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", &scriptError{name: name, err: err, stderr: stderr.String()}
	}
	return strings.TrimSpace(string(out)), nil
}

type scriptError struct {
	name, stderr string
	err          error
}

func (e *scriptError) Error() string {
	return e.name + ": " + e.err.Error() + "\n" + tail(e.stderr, 3000)
}

// result waits for the start and returns the CQL host:port or why there
// is none.
func (c *cassandra) result() (string, error) {
	<-c.ready
	return c.hosts, c.err
}

// wait returns the CQL host:port; when Cassandra could not start,
// scyllatest.Unavailable fails the test under CI and skips it loudly
// elsewhere.
func (c *cassandra) wait(t *testing.T) (string, bool) {
	began := time.Now()
	<-c.ready
	t.Logf("waited %v more for Cassandra", time.Since(began).Round(time.Millisecond))
	if c.err != nil {
		scyllatest.Unavailable(t, "chaos phase \"Cassandra stopped 30 s\" needs a Cassandra from deploy/cassandra (java and its jars): "+c.err.Error())
		return "", false
	}
	return c.hosts, true
}

func (c *cassandra) stop(t *testing.T) {
	if _, err := c.script("stop.sh", "CASSANDRA_KEEP=1"); err != nil {
		t.Errorf("stop Cassandra: %v", err)
	}
}

func (c *cassandra) restart(t *testing.T) {
	if _, err := c.script("start.sh", "CASSANDRA_KEEP=1"); err != nil {
		t.Errorf("restart Cassandra on the same data: %v", err)
	}
}
