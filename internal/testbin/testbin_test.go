package testbin

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The address FreeAddr returns is on loopback and can be listened on.
func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr = %q: %v", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
	// Below the ephemeral range, so no outgoing connection takes it
	// while a stopped process waits to listen on it again.
	_, port, _ := net.SplitHostPort(addr)
	if p, _ := strconv.Atoi(port); p < freeLow || p >= ephemeralLow() {
		t.Fatalf("FreeAddr = %q: port outside [%d, %d)", addr, freeLow, ephemeralLow())
	}
}

// StrayData catches ./data left by a run that did not have it before,
// names what is in it and removes it; a ./data that was there before is
// not the run's doing.
func TestStrayData(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := StrayData(false); err != nil {
		t.Fatalf("no ./data: %v", err)
	}
	key := filepath.Join("data", "attachments", "signing.key")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := StrayData(true); err != nil {
		t.Fatalf("./data that existed before: %v", err)
	}
	err := StrayData(false)
	if err == nil || !strings.Contains(err.Error(), key) {
		t.Fatalf("StrayData = %v, want an error naming %s", err, key)
	}
	if dataExists() {
		t.Fatal("StrayData left ./data")
	}
}
