// Package deploy holds the deployment files (kubernetes/, compose/,
// systemd/, cassandra/); its test checks them against the binary: every
// YAML file parses, every natter command line names a real role and real
// flags, every env variable a container gets from us is one the binary
// reads, and the ports in the arguments are the ports declared.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/natter-chat/natter/internal/testbin"
)

var (
	flagsOnce  sync.Once
	flagsRoles map[string]map[string]bool
	flagsErr   error
)

// roleFlags runs `natter <role> -h` for each role and collects flag names,
// once per test binary.
func roleFlags(t *testing.T) map[string]map[string]bool {
	t.Helper()
	bin := testbin.Natter(t)
	flagsOnce.Do(func() { flagsRoles, flagsErr = readRoleFlags(bin) })
	if flagsErr != nil {
		t.Fatal(flagsErr)
	}
	return flagsRoles
}

func TestMain(m *testing.M) { testbin.Main(m) }

func readRoleFlags(bin string) (map[string]map[string]bool, error) {
	flagLine := regexp.MustCompile(`^  -([a-z0-9-]+)`)
	roles := map[string]map[string]bool{}
	for _, role := range []string{"serve", "nats", "gateway", "history", "presence", "pushnotify", "events", "migrate"} {
		out, _ := exec.Command(bin, role, "-h").CombinedOutput() // -h exits non-zero
		flags := map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
				flags[m[1]] = true
			}
		}
		if len(flags) == 0 {
			return nil, fmt.Errorf("natter %s -h listed no flags:\n%s", role, out)
		}
		roles[role] = flags
	}
	return roles, nil
}

// binaryEnv is every variable cmd/natter reads with os.Getenv.
func binaryEnv(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../cmd/natter/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cmd/natter sources: %v", err)
	}
	getenv := regexp.MustCompile(`os\.(?:Getenv|LookupEnv)\("([A-Z0-9_]+)"\)`)
	env := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range getenv.FindAllSubmatch(b, -1) {
			env[string(m[1])] = true
		}
	}
	return env
}

// commandLine is one natter invocation found in a deployment file.
type commandLine struct {
	where string
	args  []string // after "natter"
	env   []string // names of env variables set for it
	ports map[string]bool
}

// checkCommand checks the role, its flags and that the ports of listen
// flags are declared (when the file declares ports at all).
func checkCommand(t *testing.T, roles map[string]map[string]bool, env map[string]bool, c commandLine) {
	t.Helper()
	if len(c.args) == 0 {
		t.Errorf("%s: natter without a command", c.where)
		return
	}
	flags, ok := roles[c.args[0]]
	if !ok {
		t.Errorf("%s: unknown natter command %q", c.where, c.args[0])
		return
	}
	downward := map[string]bool{}
	for _, a := range c.args[1:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[name] {
			t.Errorf("%s: natter %s has no flag --%s", c.where, c.args[0], name)
		}
		for _, m := range regexp.MustCompile(`\$\(([A-Z_][A-Z0-9_]*)\)`).FindAllStringSubmatch(value, -1) {
			downward[m[1]] = true
		}
		switch name {
		case "http", "listen", "cluster-listen", "metrics":
			if c.ports == nil {
				continue
			}
			if _, port, err := net.SplitHostPort(value); err != nil {
				t.Errorf("%s: --%s=%s is not host:port", c.where, name, value)
			} else if !c.ports[port] {
				t.Errorf("%s: --%s listens on %s but the port is not declared (declared: %v)", c.where, name, port, c.ports)
			}
		}
	}
	for _, e := range c.env {
		if !env[e] && !downward[e] {
			t.Errorf("%s: env %s is read by neither natter nor its arguments", c.where, e)
		}
	}
}

// walk calls fn on every map in v.
func walk(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, e := range x {
			walk(e, fn)
		}
	case []any:
		for _, e := range x {
			walk(e, fn)
		}
	}
}

func strs(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, e := range l {
			out = append(out, toString(e))
		}
	}
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	}
	return ""
}

func decodeAll(t *testing.T, path string) []any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []any
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, doc)
	}
}

func TestKubernetesManifests(t *testing.T) {
	roles, env := roleFlags(t), binaryEnv(t)
	secretKeys := map[string]bool{}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in kubernetes/")
	}
	var containers []map[string]any
	for _, path := range files {
		for _, doc := range decodeAll(t, path) {
			m, _ := doc.(map[string]any)
			if m["kind"] == "Secret" {
				sd, _ := m["stringData"].(map[string]any)
				for k := range sd {
					secretKeys[k] = true
				}
			}
			walk(doc, func(m map[string]any) {
				if _, ok := m["image"]; ok {
					if _, ok := m["name"]; ok {
						m["_file"] = path
						containers = append(containers, m)
					}
				}
			})
		}
	}
	checked := 0
	for _, c := range containers {
		cmd := append(strs(c["command"]), strs(c["args"])...)
		if len(cmd) == 0 || cmd[0] != "natter" {
			continue
		}
		where := c["_file"].(string) + ": container " + toString(c["name"])
		ports := map[string]bool{}
		named := map[string]bool{}
		portList, _ := c["ports"].([]any)
		for _, p := range portList {
			pm, _ := p.(map[string]any)
			ports[toString(pm["containerPort"])] = true
			named[toString(pm["name"])] = true
		}
		var envNames []string
		envList, _ := c["env"].([]any)
		for _, e := range envList {
			em, _ := e.(map[string]any)
			envNames = append(envNames, toString(em["name"]))
		}
		if _, ok := c["envFrom"]; ok {
			// The Secret's keys become env variables; the file-shaped one
			// (nats-auth.json) is not a valid name and is skipped by Kubernetes.
			for k := range secretKeys {
				if regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
					envNames = append(envNames, k)
				}
			}
		}
		checkCommand(t, roles, env, commandLine{where: where, args: cmd[1:], env: envNames, ports: ports})
		for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
			p, ok := c[probe].(map[string]any)
			if !ok {
				continue
			}
			hg, _ := p["httpGet"].(map[string]any)
			port := toString(hg["port"])
			if !ports[port] && !named[port] {
				t.Errorf("%s: %s port %q is not a container port", where, probe, port)
			}
			if path := toString(hg["path"]); path != "/healthz" && path != "/readyz" {
				t.Errorf("%s: %s path %q is not /healthz or /readyz", where, probe, path)
			}
			// The roles serve /readyz on --metrics only, never the client port.
			if toString(hg["path"]) == "/readyz" && cmd[1] != "nats" && port != "metrics" && port != flagPort(cmd, "metrics") {
				t.Errorf("%s: %s probes /readyz on port %q, not the --metrics port %q", where, probe, port, flagPort(cmd, "metrics"))
			}
		}
		if cmd[1] != "migrate" {
			if _, ok := c["livenessProbe"]; !ok {
				t.Errorf("%s: no livenessProbe", where)
			}
			if _, ok := c["readinessProbe"]; !ok {
				t.Errorf("%s: no readinessProbe", where)
			}
			if _, ok := c["resources"]; !ok {
				t.Errorf("%s: no resources", where)
			}
		}
		checked++
	}
	if checked < 6 {
		t.Fatalf("checked %d natter containers, want ≥ 6 (nats, gateway, history, presence, pushnotify, migrate)", checked)
	}
}

func TestComposeFile(t *testing.T) {
	roles, env := roleFlags(t), binaryEnv(t)
	docs := decodeAll(t, "compose/compose.yaml")
	services, _ := docs[0].(map[string]any)["services"].(map[string]any)
	checked := 0
	for name, s := range services {
		svc := s.(map[string]any)
		cmd := strs(svc["command"])
		if len(cmd) == 0 || cmd[0] != "natter" {
			continue
		}
		var envNames []string
		if e, ok := svc["environment"].(map[string]any); ok {
			for k := range e {
				envNames = append(envNames, k)
			}
		}
		// Compose publishes host:container; inside the network every port
		// is reachable, so ports are not required here.
		checkCommand(t, roles, env, commandLine{where: "compose: " + name, args: cmd[1:], env: envNames})
		for _, p := range strs(svc["ports"]) {
			_, container, _ := strings.Cut(p, ":")
			found := false
			for _, a := range cmd {
				if strings.HasSuffix(a, ":"+container) && (strings.HasPrefix(a, "--http=") || strings.HasPrefix(a, "--listen=")) {
					found = true
				}
			}
			if !found {
				t.Errorf("compose: %s publishes container port %s that no --http/--listen uses", name, container)
			}
		}
		checked++
	}
	if checked < 8 {
		t.Fatalf("checked %d natter services, want ≥ 8", checked)
	}
}

func TestSystemdUnits(t *testing.T) {
	roles, env := roleFlags(t), binaryEnv(t)
	files, _ := filepath.Glob("systemd/*.service")
	if len(files) < 5 {
		t.Fatalf("%d unit files, want one per role", len(files))
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			rest, ok := strings.CutPrefix(line, "ExecStart=")
			if !ok {
				continue
			}
			fields := strings.Fields(rest)
			if len(fields) == 0 || filepath.Base(fields[0]) != "natter" {
				t.Errorf("%s: ExecStart does not run natter", path)
				continue
			}
			found = true
			checkCommand(t, roles, env, commandLine{where: path, args: fields[1:]})
		}
		if !found {
			t.Errorf("%s: no ExecStart", path)
		}
	}
}

// flagPort is the port of a host:port flag in cmd, "" when it is absent.
func flagPort(cmd []string, name string) string {
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			_, port, _ := net.SplitHostPort(v)
			return port
		}
	}
	return ""
}
