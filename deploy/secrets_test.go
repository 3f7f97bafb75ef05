package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/testbin"
)

// jwtSecretValue finds a JWT secret given a value in a shipped file: an
// env assignment (YAML, env file, systemd Environment=) or a flag.
var jwtSecretValue = regexp.MustCompile(`(?:NATTER_JWT_SECRET\s*[:=]|--jwt-secret[= ])\s*("[^"]*"|'[^']*'|[^\s#]*)`)

// shippedFiles are the deployment files and docs an operator copies from.
func shippedFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"kubernetes", "compose", "systemd", "../docs"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return append(files, "../README.md", "../Dockerfile")
}

// TestNoWeakJWTSecretShipped: no shipped file holds a JWT secret the
// gateway would refuse. Literal values are handed to the binary itself;
// references ($VAR, ${VAR:?…}, $(openssl …)) and empty values, which the
// operator fills in, are not secrets.
func TestNoWeakJWTSecretShipped(t *testing.T) {
	bin := testbin.Natter(t)
	literals := 0
	for _, path := range shippedFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range jwtSecretValue.FindAllStringSubmatch(string(b), -1) {
			v := strings.Trim(m[1], `"'`)
			if v == "" || strings.HasPrefix(v, "$") || strings.HasPrefix(v, "`") {
				continue
			}
			literals++
			if refused, out := gatewayRefuses(t, bin, v); refused {
				t.Errorf("%s ships JWT secret %q, which natter gateway refuses: %s", path, v, out)
			}
		}
	}
	t.Logf("%d literal JWT secrets checked", literals)
}

// gatewayRefuses runs natter gateway with secret against a NATS that is
// not there: a refused secret fails before the dial, with its reason.
func gatewayRefuses(t *testing.T, bin, secret string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "gateway", "--data", t.TempDir(), "--http", "127.0.0.1:0",
		"--nats-url", "nats://127.0.0.1:1", "--jwt-secret", secret)
	cmd.Env = append(os.Environ(), "NATTER_JWT_SECRET=")
	out, _ := cmd.CombinedOutput()
	return strings.Contains(string(out), "JWT secret refused"), string(out)
}

// TestGatewayRefusesPlaceholder keeps the check above honest: the binary
// does refuse what used to be shipped.
func TestGatewayRefusesPlaceholder(t *testing.T) {
	if refused, out := gatewayRefuses(t, testbin.Natter(t), "change-me"); !refused {
		t.Fatalf("natter gateway accepted the placeholder change-me: %s", out)
	}
}
