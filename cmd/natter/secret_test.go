package main

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/testbin"
)

// strongSecret is what `openssl rand -base64 48` prints: the shape of a
// secret every check accepts.
const strongSecret = "q3Vd8kR1xZ0pLw7mN4tY9bC2fH6jS5aE+uG/oI8rT1eW3yQ0zX7vB4nM2kL6hJ9p"

// weakSecrets are refused outside --dev: too short, or placeholders
// however they are padded, repeated or cased.
var weakSecrets = []string{
	"", "s", "change-me", "e2e-test-secret",
	"CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME",
	"changemechangemechangemechangemechangeme",
	"secret_secret_secret_secret_secret_1234",
	"Password1234567890Password1234567890",
	"natter-example-test-jwt-secret-0000000000",
	"ReplaceWith32Base62Chars00000001",
	"your-256-bit-secret-your-256-bit-secret",
	"00000000000000000000000000000000000000000",
	"abababababababababababababababababab1212",
}

func TestCheckSecret(t *testing.T) {
	for _, s := range weakSecrets[1:] {
		if err := checkSecret(s); !errors.Is(err, errWeakSecret) {
			t.Errorf("checkSecret(%q) = %v, want refused", s, err)
		}
	}
	for _, s := range []string{strongSecret, "hK2pZ9vQ4wL7mX1cR8tB3nF6yJ0sD5gA", "zebra-velvet-quartz-ocean-lantern-94"} {
		if err := checkSecret(s); err != nil {
			t.Errorf("checkSecret(%q) = %v, want accepted", s, err)
		}
	}
}

// TestServeRefusesWeakSecrets: every role that verifies client tokens
// refuses a weak secret from the flag or the environment, unless --dev.
func TestServeRefusesWeakSecrets(t *testing.T) {
	for _, role := range []string{"serve", "gateway"} {
		for _, s := range weakSecrets[1:] {
			for _, fromEnv := range []bool{false, true} {
				args := []string{"--data", t.TempDir(), "--nats-url", "nats://127.0.0.1:1"}
				if role == "serve" {
					args = args[:2]
				}
				t.Setenv("NATTER_JWT_SECRET", "")
				if fromEnv {
					t.Setenv("NATTER_JWT_SECRET", s)
				} else {
					args = append(args, "--jwt-secret", s)
				}
				_, err := serveConfig(args, io.Discard, role)
				if !errors.Is(err, errWeakSecret) {
					t.Errorf("%s with secret %q (env %v): err = %v, want refused", role, s, fromEnv, err)
				}
				if _, err := serveConfig(append(args, "--dev"), io.Discard, role); err != nil {
					t.Errorf("%s --dev with secret %q: %v", role, s, err)
				}
			}
		}
		args := []string{"--data", t.TempDir(), "--nats-url", "nats://127.0.0.1:1", "--jwt-secret", strongSecret}
		if _, err := serveConfig(args, io.Discard, role); err != nil {
			t.Errorf("%s with a strong secret: %v", role, err)
		}
	}
	// Roles that do not verify tokens do not need the secret at all.
	t.Setenv("NATTER_JWT_SECRET", "change-me")
	if _, err := serveConfig([]string{"--data", t.TempDir(), "--nats-url", "nats://127.0.0.1:1"}, io.Discard, "presence"); err != nil {
		t.Errorf("presence with NATTER_JWT_SECRET=change-me: %v", err)
	}
}

// TestWeakSecretExitsNonZero runs the binary: it exits non-zero at once,
// before any listener or NATS connection, and says why.
func TestWeakSecretExitsNonZero(t *testing.T) {
	bin := testbin.Natter(t)
	for _, role := range []string{"serve", "gateway"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		args := []string{role, "--data", t.TempDir(), "--http", testbin.FreeAddr(t)}
		if role == "serve" {
			args = append(args, "--nats", testbin.FreeAddr(t))
		} else {
			args = append(args, "--nats-url", "nats://"+testbin.FreeAddr(t))
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(cmd.Environ(), "NATTER_JWT_SECRET=change-me")
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("%s with NATTER_JWT_SECRET=change-me kept running: %s", role, out)
		}
		if err == nil || !strings.Contains(string(out), "JWT secret refused") || !strings.Contains(string(out), "openssl rand") {
			t.Errorf("%s with NATTER_JWT_SECRET=change-me: %v, %s", role, err, out)
		}
	}
}
