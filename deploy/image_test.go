package deploy

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the repository, from this package's directory.
const repoRoot = ".."

// instruction is one Dockerfile instruction of a stage.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY...
	args string // the rest of the line, continuations joined
	line int
}

// stage is one FROM and what follows it.
type stage struct {
	image, name string
	ins         []instruction
}

// parseDockerfile splits a Dockerfile into stages. It knows what this
// repository's Dockerfile uses: comments, backslash continuations, one
// instruction per logical line.
func parseDockerfile(t *testing.T, file string) []stage {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no Dockerfile at the repository root (deploy/compose builds natter:dev from it): %v", err)
	}
	var stages []stage
	var cur strings.Builder
	start := 0
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile:%d: %s before FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if rest, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	return stages
}

// words splits a shell command line into words, with single and double
// quotes (no variables, no escapes: the Dockerfile uses none).
func words(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	var w strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		case r == '$' || r == '\\' || r == '`':
			t.Fatalf("Dockerfile command %q uses shell expansion the test does not follow", s)
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if in {
		out = append(out, w.String())
	}
	return out
}

// dockerignore is the build context's exclusion list: plain paths from
// the root and **/ prefixed patterns, each matching a path and what is
// under it.
type dockerignore []string

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatalf("no .dockerignore (the context would carry .git and local data): %v", err)
	}
	var d dockerignore
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") || strings.Contains(strings.TrimPrefix(line, "**/"), "**") {
			t.Fatalf(".dockerignore: pattern %q is beyond what this test follows; keep to plain paths and **/ prefixes", line)
		}
		d = append(d, strings.TrimPrefix(line, "/"))
	}
	return d
}

// ignored says whether the slash path rel (from the context root) is left
// out of the context.
func (d dockerignore) ignored(rel string) bool {
	for _, p := range d {
		anywhere := strings.HasPrefix(p, "**/")
		p = strings.TrimPrefix(p, "**/")
		parts := strings.Split(rel, "/")
		for i := range parts {
			for j := i + 1; j <= len(parts); j++ {
				if i > 0 && !anywhere {
					break
				}
				if ok, _ := path.Match(p, strings.Join(parts[i:j], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

// copyContext copies the repository into dir as `docker build .` sends
// it: without what .dockerignore leaves out.
func copyContext(t *testing.T, ign dockerignore, dir string) {
	t.Helper()
	err := filepath.WalkDir(repoRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil || rel == "." {
			return err
		}
		if ign.ignored(filepath.ToSlash(rel)) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(dir, rel)
		switch {
		case e.IsDir():
			return os.MkdirAll(dst, 0o755)
		case !e.Type().IsRegular():
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy the build context: %v", err)
	}
}

// TestDockerfile checks the image the manifests run without a Docker
// daemon: the builder is go.mod's toolchain, the build stage's go build,
// run on a copy of the build context, gives a static binary that runs,
// the COPY sources are in the context, and the runtime stage runs the
// binary the way the manifests call it, as a non-root user.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	ign := readDockerignore(t)
	build, final := stages[0], stages[len(stages)-1]

	mod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	tc := regexp.MustCompile(`(?m)^toolchain go([0-9.]+)$`).FindSubmatch(mod)
	if tc == nil {
		t.Fatal("go.mod has no toolchain line")
	}
	if img := build.image; !strings.HasPrefix(img, "golang:"+string(tc[1])+"-") && img != "golang:"+string(tc[1]) {
		t.Errorf("build stage FROM %s, want golang:%s (go.mod's toolchain)", img, tc[1])
	}

	env := map[string]string{}
	var goBuild []string
	for _, st := range stages {
		for _, in := range st.ins {
			if in.cmd != "COPY" {
				continue
			}
			f := strings.Fields(in.args)
			if slices.ContainsFunc(f, func(s string) bool { return strings.HasPrefix(s, "--from=") }) {
				continue
			}
			var srcs []string
			for _, s := range f[:len(f)-1] {
				if !strings.HasPrefix(s, "--") {
					srcs = append(srcs, s)
				}
			}
			for _, s := range srcs {
				if s == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, s)); err != nil {
					t.Errorf("Dockerfile:%d: COPY %s: not in the repository", in.line, s)
				} else if ign.ignored(s) {
					t.Errorf("Dockerfile:%d: COPY %s: .dockerignore leaves it out of the context", in.line, s)
				}
			}
		}
	}
	for _, in := range build.ins {
		switch in.cmd {
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile:%d: ENV %s: use KEY=value", in.line, in.args)
				}
				env[k] = v
			}
		case "RUN":
			for _, cmd := range strings.Split(in.args, "&&") {
				if w := words(t, cmd); len(w) > 1 && w[0] == "go" && w[1] == "build" {
					goBuild = w
				}
			}
		}
	}
	if goBuild == nil {
		t.Fatal("the build stage has no go build")
	}
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("build stage ENV CGO_ENABLED=%q, want 0 for a static binary", env["CGO_ENABLED"])
	}
	if !slices.Contains(goBuild, "-trimpath") {
		t.Errorf("%v: no -trimpath (build paths would end up in the binary)", goBuild)
	}
	out := slices.Index(goBuild, "-o")
	if out < 0 || out+1 >= len(goBuild) || goBuild[len(goBuild)-1] != "./cmd/natter" {
		t.Fatalf("%v: want go build ... -o <file> ./cmd/natter", goBuild)
	}
	builtAt := goBuild[out+1]

	// Build as the builder does: from the context Docker would send,
	// with the stage's environment.
	ctxDir := t.TempDir()
	copyContext(t, ign, ctxDir)
	bin := filepath.Join(t.TempDir(), "natter")
	args := slices.Clone(goBuild[1:])
	args[out] = bin
	cmd := exec.Command("go", args...)
	cmd.Dir = ctxDir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s (in a copy of the build context): %v\n%s", strings.Join(goBuild, " "), err, b)
	}
	checkStatic(t, bin)
	if b, _ := exec.Command(bin, "serve", "-h").CombinedOutput(); !strings.Contains(string(b), "-http") {
		t.Errorf("the built binary does not run: natter serve -h said\n%s", b)
	}

	// The runtime stage.
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") && final.image != "scratch" {
		t.Errorf("runtime stage FROM %s, want distroless/static or scratch (nothing but the binary)", final.image)
	}
	var user, cmdJSON, volume string
	var installed string
	exposed := map[string]bool{}
	for _, in := range final.ins {
		switch in.cmd {
		case "USER":
			user = in.args
		case "CMD":
			cmdJSON = in.args
		case "ENTRYPOINT":
			t.Errorf("Dockerfile:%d: ENTRYPOINT: the manifests' commands start with natter (compose's command replaces CMD only)", in.line)
		case "VOLUME":
			volume = in.args
		case "EXPOSE":
			for _, p := range strings.Fields(in.args) {
				exposed[strings.TrimSuffix(p, "/tcp")] = true
			}
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) >= 3 && f[0] == "--from="+build.name && slices.Contains(f, builtAt) {
				installed = f[len(f)-1]
			}
		}
	}
	uid, gid, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("runtime USER %q, want a numeric non-root uid (Kubernetes' runAsNonRoot checks it)", user)
	}
	if _, err := strconv.Atoi(gid); gid != "" && err != nil {
		t.Errorf("runtime USER %q: group is not numeric", user)
	}
	checkPodUsers(t, uid, gid)
	if installed != "/usr/local/bin/natter" {
		t.Errorf("the binary is installed at %q, want /usr/local/bin/natter (on the PATH; the systemd units use it too)", installed)
	}
	if volume != "/data" {
		t.Errorf("VOLUME %q, want /data (the manifests mount the data there)", volume)
	}
	var argv []string
	if err := json.Unmarshal([]byte(cmdJSON), &argv); err != nil || len(argv) < 2 || argv[0] != "natter" {
		t.Fatalf("CMD %s: want the JSON form [\"natter\", \"serve\", ...]", cmdJSON)
	}
	checkCommand(t, roleFlags(t), binaryEnv(t), commandLine{where: "Dockerfile CMD", args: argv[1:], ports: exposed})
	for _, p := range manifestPorts(t) {
		if !exposed[p] {
			t.Errorf("a manifest uses container port %s, which the Dockerfile does not EXPOSE", p)
		}
	}
}

// checkStatic fails unless bin is an ELF file with no interpreter and no
// shared libraries: what runs on distroless/static or scratch.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a PT_INTERP program header: dynamically linked", bin)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
}

// manifestPorts lists the container ports of natter in the Kubernetes
// manifests and the compose file.
func manifestPorts(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, file := range files {
		for _, doc := range decodeAll(t, file) {
			walk(doc, func(m map[string]any) {
				if img, _ := m["image"].(string); !strings.Contains(img, "natter:") {
					return
				}
				ports, _ := m["ports"].([]any)
				for _, p := range ports {
					pm, _ := p.(map[string]any)
					seen[toString(pm["containerPort"])] = true
				}
			})
		}
	}
	services, _ := decodeAll(t, "compose/compose.yaml")[0].(map[string]any)["services"].(map[string]any)
	for _, s := range services {
		svc, _ := s.(map[string]any)
		for _, a := range strs(svc["command"]) {
			if v, ok := strings.CutPrefix(a, "--"); ok && strings.Contains(v, "=0.0.0.0:") {
				seen[v[strings.LastIndex(v, ":")+1:]] = true
			}
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// checkPodUsers: every Kubernetes pod that runs the image runs as its
// user, with runAsNonRoot, and with its group as fsGroup, so the data
// volume is writable.
func checkPodUsers(t *testing.T, uid, gid string) {
	t.Helper()
	files, _ := filepath.Glob("kubernetes/*.yaml")
	pods := 0
	for _, file := range files {
		for _, doc := range decodeAll(t, file) {
			walk(doc, func(m map[string]any) {
				cs, ok := m["containers"].([]any)
				if !ok || !slices.ContainsFunc(cs, func(c any) bool {
					cm, _ := c.(map[string]any)
					img, _ := cm["image"].(string)
					return strings.Contains(img, "natter:")
				}) {
					return
				}
				pods++
				sc, _ := m["securityContext"].(map[string]any)
				if sc["runAsNonRoot"] != true || toString(sc["runAsUser"]) != uid || (gid != "" && toString(sc["fsGroup"]) != gid) {
					t.Errorf("%s: a pod runs natter with securityContext %v, want runAsNonRoot, runAsUser %s and fsGroup %s (the Dockerfile's USER)", file, sc, uid, gid)
				}
			})
		}
	}
	if pods < 6 {
		t.Errorf("found %d pods running natter, want ≥ 6", pods)
	}
}
