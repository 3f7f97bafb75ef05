package testbin

import (
	"net"
	"strconv"
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
