package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// roleCommands are the natter commands that run a role against the NATS
// cluster, each with a NATS user of its own (nats/schema.Roles).
var roleCommands = []string{"gateway", "history", "presence", "pushnotify", "events"}

// In Kubernetes every role reads NATTER_NATS_URL from a Secret of its own,
// only the gateway gets NATTER_JWT_SECRET, no pod gets a shared Secret,
// and the Secrets are generated from files the operator writes, which are
// not shipped (issue 14).
func TestKubernetesPerRoleCredentials(t *testing.T) {
	seen := map[string]bool{}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, path := range files {
		for _, doc := range decodeAll(t, path) {
			if m, _ := doc.(map[string]any); m["kind"] == "Secret" {
				t.Errorf("%s ships a Secret with values; generate it from files the operator writes", path)
			}
			walk(doc, func(c map[string]any) {
				cmd := append(strs(c["command"]), strs(c["args"])...)
				if len(cmd) < 2 || cmd[0] != "natter" || !slices.Contains(roleCommands, cmd[1]) {
					return
				}
				role := cmd[1]
				seen[role] = true
				if _, ok := c["envFrom"]; ok {
					t.Errorf("%s: %s takes a whole Secret (envFrom); name each key from its own", path, role)
				}
				refs := map[string]string{}
				envList, _ := c["env"].([]any)
				for _, e := range envList {
					em, _ := e.(map[string]any)
					vf, _ := em["valueFrom"].(map[string]any)
					ref, _ := vf["secretKeyRef"].(map[string]any)
					if ref == nil {
						continue
					}
					refs[toString(em["name"])] = toString(ref["name"])
					if toString(ref["name"]) != "natter-"+role {
						t.Errorf("%s: %s reads %s from Secret %s, not its own natter-%s", path, role, toString(em["name"]), toString(ref["name"]), role)
					}
				}
				if refs["NATTER_NATS_URL"] == "" {
					t.Errorf("%s: %s gets no NATTER_NATS_URL of its own", path, role)
				}
				if _, ok := refs["NATTER_JWT_SECRET"]; ok != (role == "gateway") {
					t.Errorf("%s: %s gets NATTER_JWT_SECRET: %v, want %v (gateways only)", path, role, ok, role == "gateway")
				}
			})
		}
	}
	for _, role := range roleCommands {
		if !seen[role] {
			t.Errorf("no Kubernetes container runs natter %s", role)
		}
	}

	docs := decodeAll(t, "kubernetes/kustomization.yaml")
	gens, _ := docs[0].(map[string]any)["secretGenerator"].([]any)
	generated := map[string][]string{}
	for _, g := range gens {
		gm, _ := g.(map[string]any)
		generated[toString(gm["name"])] = append(strs(gm["envs"]), strs(gm["files"])...)
	}
	ignore, err := os.ReadFile("kubernetes/.gitignore")
	if err != nil || !strings.Contains(string(ignore), "secrets/") {
		t.Errorf("kubernetes/.gitignore does not keep secrets/ out of the repository: %v", err)
	}
	for _, name := range append([]string{"natter-nats-auth"}, prefixed("natter-", roleCommands)...) {
		files, ok := generated[name]
		if !ok || len(files) == 0 {
			t.Errorf("kustomization.yaml generates no Secret %s", name)
		}
		for _, f := range files {
			if !strings.HasPrefix(f, "secrets/") {
				t.Errorf("Secret %s is generated from %s, outside the unshipped secrets/", name, f)
			}
			if _, err := os.Stat(filepath.Join("kubernetes", f)); err == nil {
				t.Errorf("kubernetes/%s is shipped", f)
			}
		}
	}
}

func prefixed(p string, s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = p + x
	}
	return out
}

// In compose every role's NATTER_NATS_URL is a variable of its own and only
// gateways get NATTER_JWT_SECRET; in systemd every role unit reads an env
// file of its own.
func TestComposeAndSystemdPerRoleCredentials(t *testing.T) {
	services, _ := decodeAll(t, "compose/compose.yaml")[0].(map[string]any)["services"].(map[string]any)
	seen := map[string]bool{}
	for name, s := range services {
		svc := s.(map[string]any)
		cmd := strs(svc["command"])
		env, _ := svc["environment"].(map[string]any)
		if len(cmd) < 2 || !slices.Contains(roleCommands, cmd[1]) {
			for k := range env {
				if k == "NATTER_JWT_SECRET" || k == "NATTER_NATS_URL" {
					t.Errorf("compose: %s (%v) gets %s", name, cmd, k)
				}
			}
			continue
		}
		role := cmd[1]
		seen[role] = true
		url := toString(env["NATTER_NATS_URL"])
		if !strings.Contains(url, "${NATTER_NATS_URL_"+strings.ToUpper(role)+":?") {
			t.Errorf("compose: %s's NATTER_NATS_URL is %q, not the %s role's own variable", name, url, role)
		}
		if _, ok := env["NATTER_JWT_SECRET"]; ok != (role == "gateway") {
			t.Errorf("compose: %s gets NATTER_JWT_SECRET: %v, want %v (gateways only)", name, ok, role == "gateway")
		}
	}
	for _, role := range []string{"gateway", "history", "presence"} {
		if !seen[role] {
			t.Errorf("compose runs no %s", role)
		}
	}

	envFiles := map[string]string{}
	for _, role := range roleCommands {
		path := "systemd/natter-" + role + ".service"
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^EnvironmentFile=(\S+)$`).FindAllStringSubmatch(string(b), -1)
		if len(m) != 1 || m[0][1] != "/etc/natter/"+role+".env" {
			t.Errorf("%s: EnvironmentFile %v, want only /etc/natter/%s.env", path, m, role)
			continue
		}
		if other, dup := envFiles[m[0][1]]; dup {
			t.Errorf("%s shares its env file with %s", path, other)
		}
		envFiles[m[0][1]] = path
		if mentions := strings.Contains(string(b), "NATTER_JWT_SECRET="); mentions != (role == "gateway") {
			t.Errorf("%s: writes NATTER_JWT_SECRET: %v (only the gateway's env file has it)", path, mentions)
		}
	}
}

// No deployment file ships a password or a placeholder for one, nor hands
// a role the operator's user.
func TestNoCredentialsShipped(t *testing.T) {
	bad := regexp.MustCompile(`(?i)replacewith|change-?me|://operator:|://[a-z]+:[A-Za-z0-9]{8,}@`)
	for _, dir := range []string{"kubernetes", "compose", "systemd"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if m := bad.Find(b); m != nil {
				t.Errorf("%s ships %q", path, m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// The history role serves the erase API only with the eraser role's URL
// (NATTER_ERASER_NATS_URL, docs/operations.md "Erasing a user"): every
// deployment gives its history process one, from the eraser's own NATS
// user, and tells the operator how to write it.
func TestHistoryGetsEraserURL(t *testing.T) {
	const v = "NATTER_ERASER_NATS_URL"
	seen := false
	for _, doc := range decodeAll(t, "kubernetes/roles.yaml") {
		walk(doc, func(c map[string]any) {
			cmd := append(strs(c["command"]), strs(c["args"])...)
			if len(cmd) < 2 || cmd[0] != "natter" || cmd[1] != "history" {
				return
			}
			seen = true
			envList, _ := c["env"].([]any)
			for _, e := range envList {
				em, _ := e.(map[string]any)
				vf, _ := em["valueFrom"].(map[string]any)
				ref, _ := vf["secretKeyRef"].(map[string]any)
				if toString(em["name"]) == v && toString(ref["key"]) == v {
					return
				}
			}
			t.Errorf("kubernetes: natter history gets no %s from its Secret", v)
		})
	}
	if !seen {
		t.Error("kubernetes: no natter history container")
	}
	writes := regexp.MustCompile(v + `=\$\(natter credentials [^)]*--user eraser\)`)
	for _, file := range []string{"kubernetes/kustomization.yaml", "systemd/natter-history.service"} {
		if b, err := os.ReadFile(file); err != nil || !writes.Match(b) {
			t.Errorf("%s does not tell the operator to write %s from natter credentials --user eraser (%v)", file, v, err)
		}
	}
	services, _ := decodeAll(t, "compose/compose.yaml")[0].(map[string]any)["services"].(map[string]any)
	hist, _ := services["history"].(map[string]any)
	env, _ := hist["environment"].(map[string]any)
	if !strings.Contains(toString(env[v]), "${NATTER_NATS_URL_ERASER:?") {
		t.Errorf("compose: history's %s is %q, not the eraser role's own variable", v, toString(env[v]))
	}
	if b, _ := os.ReadFile("compose/compose.yaml"); !regexp.MustCompile(`for r in [a-z ]*\beraser\b`).Match(b) {
		t.Error("compose.yaml's credentials loop does not write NATTER_NATS_URL_ERASER")
	}
}
