package presence

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
)

// Environment of a helper process: the test binary run again as a
// presence service or a gateway's tracker on the test's NATS server.
const (
	envChild    = "PRESENCE_TEST_CHILD" // "service" or "gateway"
	envNATS     = "PRESENCE_TEST_NATS"  // server URL with credentials
	envUsers    = "PRESENCE_TEST_USERS" // gateway: how many users to connect
	envLeaseTTL = "PRESENCE_TEST_LEASE" // gateway: its lease TTL
)

// TestHelperProcess is not a test: it is the body of the helper
// processes the tests below start, and returns at once in a normal run.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(envChild)
	if role == "" {
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := nats.Connect(os.Getenv(envNATS), nats.Name("presence-test-"+role))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch role {
	case "service":
		convs, err := conversation.New(ctx, conversation.Config{}, js)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := NewService(ctx, ServiceConfig{Logger: log}, nc, js, convs)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		fmt.Println("running")
		_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes stdin
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	case "gateway":
		n, _ := strconv.Atoi(os.Getenv(envUsers))
		ttl, _ := time.ParseDuration(os.Getenv(envLeaseTTL))
		tr, err := NewTracker(ctx, TrackerConfig{Gateway: "gw-crash", LeaseTTL: ttl, Logger: log}, js)
		if err != nil {
			t.Fatal(err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					if err := tr.Connected(ctx, crashUser(i), "s1", ""); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		fmt.Println("ready")
		select {} // until killed
	}
}

func crashUser(i int) string { return "cu" + strconv.Itoa(i) }

// child starts the test binary as a helper process; closing the returned
// stdin stops a service. It is killed at the end of the test.
func child(t *testing.T, e *env, role string, env ...string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"="+role, envNATS+"="+e.srv.OperatorURL())
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	want := map[string]string{"service": "running\n", "gateway": "ready\n"}[role]
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		got <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-got:
		if line != want {
			t.Fatalf("%s process said %q", role, line)
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("%s process not %s within 5 minutes", role, want)
	}
	return cmd, stdin
}

// tally counts the online and offline transitions announced per user.
type tally struct {
	mu              sync.Mutex
	online, offline map[string]int
	onlines         int // in all
	offlines        int
	firstOffline    time.Time
	lastOffline     time.Time // the last user's first offline
}

func count(t *testing.T, nc *nats.Conn) *tally {
	t.Helper()
	c := &tally{online: make(map[string]int), offline: make(map[string]int)}
	sub, err := nc.Subscribe(schema.Presence("*"), func(m *nats.Msg) {
		var ev Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Errorf("presence event %q: %v", m.Data, err)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if ev.Online {
			c.online[ev.User]++
			if c.online[ev.User] == 1 {
				c.onlines++
			}
		} else {
			c.offline[ev.User]++
			if c.offline[ev.User] == 1 {
				c.offlines++
				c.lastOffline = time.Now()
				if c.offlines == 1 {
					c.firstOffline = c.lastOffline
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

// counts returns how many users were announced online, and offline, at
// least once.
func (c *tally) counts() (on, off int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.onlines, c.offlines
}

// Two presence services in two processes share the work: every user's
// coming online and going offline is announced exactly once, and each
// service holds half of the partitions. On main the second service
// announces every transition a second time.
func TestServicesInTwoProcessesAnnounceOnce(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	seen := count(t, e.nc)
	_, stdin := child(t, e, "service")
	runService(t, e)
	// Let the two services settle their shares (a few lease periods).
	owners := func() map[string]int {
		by := make(map[string]int)
		for p := range 16 {
			if en, err := e.kv.Get(ctx, "o."+strconv.Itoa(p)); err == nil {
				by[string(en.Value())]++
			}
		}
		return by
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if by := owners(); len(by) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	const users = 200
	tr := newTracker(t, e.js, TrackerConfig{Gateway: "gw1", LeaseTTL: 10 * time.Second})
	for i := range users {
		if err := tr.Connected(ctx, crashUser(i), "s1", ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "every user announced online", func() bool { on, _ := seen.counts(); return on >= users })
	for i := range users {
		if err := tr.Disconnected(ctx, crashUser(i), "s1"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "every user announced offline", func() bool { _, off := seen.counts(); return off >= users })
	time.Sleep(time.Second) // a second announcement would be here by now
	seen.mu.Lock()
	for i := range users {
		u := crashUser(i)
		if seen.online[u] != 1 || seen.offline[u] != 1 {
			t.Errorf("%s announced online %d times and offline %d times, want once each", u, seen.online[u], seen.offline[u])
		}
	}
	seen.mu.Unlock()
	by := owners()
	if len(by) != 2 {
		t.Fatalf("partition owners %v, want the two services", by)
	}
	for id, n := range by {
		if n != 8 {
			t.Errorf("service %s holds %d partitions, want 8 of 16: %v", id, n, by)
		}
	}

	// The child stops: its partitions come back to this service, which
	// announces what changed meanwhile, once.
	_ = stdin.Close()
	if err := tr.Connected(ctx, "late", "s1", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "all partitions back to the service left", func() bool {
		by := owners()
		return len(by) == 1 && by[firstKey(by)] == 16
	})
	waitFor(t, 10*time.Second, "late user announced", func() bool {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		return seen.online["late"] == 1
	})
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

// crashUsers is how many users the crash test's gateway holds, from
// PRESENCE_CRASH_USERS (issue 19 measured 20,000); 0 when unset.
func crashUsers() int {
	n, _ := strconv.Atoi(os.Getenv("PRESENCE_CRASH_USERS"))
	return n
}

// A gateway process holding thousands of users is killed (SIGKILL): every
// one of them is announced offline within the contract's bound, lease TTL
// (2 × heartbeat_s) + 5 s, with the partitions spread over two presence
// services in two processes. It is a measurement as much as a test, and
// its bound is wall-clock time: it runs only when asked for, e.g.
//
//	PRESENCE_CRASH_USERS=20000 go test -count=1 -run Crash -v ./presence
//
// (a box loaded far beyond its cores misses any bound).
func TestGatewayCrashAnnouncedWithinBound(t *testing.T) {
	n := crashUsers()
	if n <= 0 {
		t.Skip("set PRESENCE_CRASH_USERS to run it")
	}
	e := setup(t)
	const lease = 2 * time.Second
	bound := lease + 5*time.Second
	seen := count(t, e.nc)
	// PRESENCE_CRASH_SERVICES=1 runs one service, as main had to.
	if os.Getenv("PRESENCE_CRASH_SERVICES") != "1" {
		child(t, e, "service")
	}
	runService(t, e)

	t0 := time.Now()
	gw, _ := child(t, e, "gateway", envUsers+"="+strconv.Itoa(n), envLeaseTTL+"="+lease.String())
	waitFor(t, 5*time.Minute, "every user announced online", func() bool { on, _ := seen.counts(); return on >= n })
	t.Logf("%d users connected and announced online in %v", n, time.Since(t0).Round(time.Millisecond))

	killed := time.Now()
	if err := gw.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Minute, "every user announced offline", func() bool { _, off := seen.counts(); return off >= n })
	seen.mu.Lock()
	took, first := seen.lastOffline.Sub(killed), seen.firstOffline.Sub(killed)
	seen.mu.Unlock()
	t.Logf("gateway with %d users killed: first offline announced %v later, last %v later (lease %v, bound %v; load %s)",
		n, first.Round(time.Millisecond), took.Round(time.Millisecond), lease, bound, loadAvg())
	if took > bound {
		t.Errorf("last of %d users announced offline %v after the gateway died, beyond the bound of %v", n, took.Round(time.Millisecond), bound)
	}
	for u := range n {
		if st := state(t, e.kv, crashUser(u)); st.Online {
			t.Fatalf("%s still recorded online: %+v", crashUser(u), st)
		}
	}
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
