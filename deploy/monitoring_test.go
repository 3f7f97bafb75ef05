package deploy

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/natter-chat/natter/internal/testbin"
)

// The monitoring files: alert rules, their unit tests, the example
// Prometheus config and the Grafana dashboard.
var (
	rulesFile     = filepath.Join("prometheus", "natter-rules.yml")
	rulesTestFile = filepath.Join("prometheus", "natter-rules.test.yml")
	dashboardFile = filepath.Join("grafana", "natter-dashboard.json")
)

// tool finds a monitoring binary the test task installs (Debian's
// prometheus package); missing is a failure, never a skip.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: `go tool task test` installs Debian's prometheus package (apt-get install prometheus): %v", name, err)
	}
	return p
}

// TestAlertRules checks the rules' syntax and runs their unit tests with
// promtool.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", filepath.Base(rulesTestFile)}} {
		cmd := exec.Command(promtool, args...)
		if args[0] == "test" {
			cmd.Dir = filepath.Dir(rulesTestFile)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// metricName matches a metric named in a PromQL expression of ours.
var metricName = regexp.MustCompile(`\b(natter_[a-z0-9_]+|process_[a-z_]+)\b`)

// monitoredMetrics returns every metric name the rules and the dashboard
// use, with where each is used.
func monitoredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, rulesFile, &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, m := range metricName.FindAllString(r.Expr, -1) {
				used[m] = append(used[m], "alert "+r.Alert)
			}
		}
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if len(dash.Panels) == 0 {
		t.Fatalf("%s has no panels", dashboardFile)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			names := metricName.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("dashboard panel %q: query %q names no metric", p.Title, q.Expr)
			}
			for _, m := range names {
				used[m] = append(used[m], "panel "+p.Title)
			}
		}
	}
	return used
}

// TestMonitoringMetricsExist runs a one-node cluster with every role as
// its own process, scrapes it with a real Prometheus loading our rules,
// and asks Prometheus's API whether every metric a rule or a dashboard
// panel names exists, and whether every rule evaluates without error.
func TestMonitoringMetricsExist(t *testing.T) {
	prom := tool(t, "prometheus")
	used := monitoredMetrics(t)
	bin := testbin.Natter(t)
	dir := t.TempDir()

	// One natter nats node: its --http listener serves its metrics.
	natsClient, natsHTTP := testbin.FreeAddr(t), testbin.FreeAddr(t)
	authFile := filepath.Join(dir, "nats-auth.json")
	startProc(t, bin, "nats", natsHTTP, "/readyz", "nats", "--listen", natsClient, "--data", filepath.Join(dir, "nats"),
		"--auth-file", authFile, "--trim-interval", "1s", "--http", natsHTTP)
	var auth struct {
		Operator string `json:"operator"`
	}
	b, err := os.ReadFile(authFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &auth); err != nil {
		t.Fatal(err)
	}
	natsURL := "nats://operator:" + auth.Operator + "@" + natsClient
	// Web Push enabled with a fresh VAPID key, so the push role runs.
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vapid := filepath.Join(dir, "vapid.key")
	if err := os.WriteFile(vapid, []byte(base64.RawURLEncoding.EncodeToString(key.Bytes())), 0o600); err != nil {
		t.Fatal(err)
	}
	targets := []string{natsHTTP}
	roles := [][]string{
		{"gateway", "--jwt-secret", "monitoring-test-secret-0123456789abcdef", "--data", filepath.Join(dir, "gateway")},
		{"history", "--data", filepath.Join(dir, "history")},
		{"presence"},
		{"pushnotify", "--webpush-vapid-key-file", vapid, "--webpush-subject", "mailto:ops@example.invalid"},
	}
	for _, r := range roles {
		metricsAddr := testbin.FreeAddr(t)
		args := append([]string{r[0], "--nats-url", natsURL, "--http", testbin.FreeAddr(t), "--metrics", metricsAddr, "--log-level", "warn"}, r[1:]...)
		startProc(t, bin, r[0], metricsAddr, "/readyz", args...)
		targets = append(targets, metricsAddr)
	}

	// Prometheus with our rules, scraping every process each second.
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(rulesFile)), mustRead(t, rulesFile), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%s]
scrape_configs:
  - job_name: natter
    static_configs:
      - targets: [%s]
`, filepath.Base(rulesFile), strings.Join(targets, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := testbin.FreeAddr(t)
	startProc(t, prom, "prometheus", promAddr, "/-/ready", "--config.file", cfgFile,
		"--storage.tsdb.path", filepath.Join(dir, "tsdb"), "--web.listen-address", promAddr)

	api := func(path string, v any) {
		t.Helper()
		resp, err := http.Get("http://" + promAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	// Wait until every target has been scraped successfully and every
	// rule evaluated at least once.
	var names []string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var tg struct {
			Data struct {
				ActiveTargets []struct {
					ScrapeURL string `json:"scrapeUrl"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		api("/api/v1/targets", &tg)
		var rl struct {
			Data struct {
				Groups []struct {
					Name  string `json:"name"`
					Rules []struct {
						Name           string `json:"name"`
						Health         string `json:"health"`
						LastError      string `json:"lastError"`
						LastEvaluation string `json:"lastEvaluation"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		api("/api/v1/rules", &rl)
		var waiting []string
		up := 0
		for _, a := range tg.Data.ActiveTargets {
			if a.Health == "up" {
				up++
			} else {
				waiting = append(waiting, fmt.Sprintf("target %s: %s %s", a.ScrapeURL, a.Health, a.LastError))
			}
		}
		if up != len(targets) {
			waiting = append(waiting, fmt.Sprintf("%d of %d targets up", up, len(targets)))
		}
		rules := 0
		for _, g := range rl.Data.Groups {
			for _, r := range g.Rules {
				rules++
				switch {
				case r.Health == "err":
					t.Errorf("rule %s/%s fails to evaluate: %s", g.Name, r.Name, r.LastError)
				case r.Health != "ok":
					waiting = append(waiting, fmt.Sprintf("rule %s not evaluated yet (%s)", r.Name, r.Health))
				}
			}
		}
		if rules == 0 {
			waiting = append(waiting, "no rules loaded yet")
		}
		if len(waiting) == 0 {
			// Two more scrapes, so every series is in.
			time.Sleep(2500 * time.Millisecond)
			var lv struct {
				Data []string `json:"data"`
			}
			api("/api/v1/label/__name__/values", &lv)
			names = lv.Data
			break
		}
		if t.Failed() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never scraped everything:\n%s", strings.Join(waiting, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	var missing []string
	for m, where := range used {
		if !slices.Contains(names, m) {
			missing = append(missing, fmt.Sprintf("%s (used by %s)", m, strings.Join(slices.Compact(where), ", ")))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no natter process exports %s", m)
	}
	t.Logf("%d metrics named by the rules and the dashboard, %d of them missing (%d names scraped)", len(used), len(missing), len(names))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncBuffer is a process's output, written by exec and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc runs a process until the test ends and waits until GET
// probe on addr answers 200.
func startProc(t *testing.T, bin, name, addr, probe string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			s := out.String()
			if len(s) > 3000 {
				s = s[len(s)-3000:]
			}
			t.Logf("--- %s output (tail) ---\n%s", name, s)
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case <-done:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		resp, err := http.Get("http://" + addr + probe)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready on %s%s within 3 minutes", name, addr, probe)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(mustRead(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
