// Package testbin is what tests that run Natter as separate processes
// share: the natter binary, built once per test binary, and free loopback
// ports.
package testbin

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// natterPkg is the package Natter builds.
const natterPkg = "github.com/natter-chat/natter/cmd/natter"

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Natter returns the path of cmd/natter, built on the first call of the
// test binary into a temporary directory that Main removes. A failed build
// fails every test that asks for the binary.
func Natter(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "natter-testbin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "natter")
		if out, err := exec.Command("go", "build", "-o", buildBin, natterPkg).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build %s: %w\n%s", natterPkg, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Main runs the tests and removes the binary Natter built; a package whose
// tests call Natter runs it from TestMain:
//
//	func TestMain(m *testing.M) { testbin.Main(m) }
//
// It fails the run when the tests left a directory ./data that was not
// there before (StrayData): a natter process started without --data
// writes there, into the source tree.
func Main(m *testing.M) {
	before := dataExists()
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	if err := StrayData(before); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// strayDir is the default --data of natter's commands, relative to the
// directory a test runs in (its package's, in the source tree).
const strayDir = "data"

func dataExists() bool {
	_, err := os.Stat(strayDir)
	return err == nil
}

// StrayData returns an error naming ./data and what it holds when it
// exists now but did not before (existed false): a process a test
// started wrote into the source tree, because it was given no --data (or
// --attachments-dir) of a temporary directory. It removes that
// directory, so one bad run does not make the next pass unnoticed.
func StrayData(existed bool) error {
	if existed || !dataExists() {
		return nil
	}
	var files []string
	_ = filepath.WalkDir(strayDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	_ = os.RemoveAll(strayDir)
	wd, _ := os.Getwd()
	return fmt.Errorf("testbin: the tests wrote %s into the source tree (%s): give every natter process a --data of t.TempDir()",
		strings.Join(files, ", "), filepath.Join(wd, strayDir))
}

// FreeAddr returns a loopback host:port whose port was free a moment ago,
// for a process that must be told its address before it starts.
//
// The port is below the kernel's ephemeral range: a port the kernel hands
// out for outgoing connections (thousands in a run: NATS and CQL clients
// reconnecting) could be taken by one of them while a process stopped by a
// fault waits to listen on it again.
func FreeAddr(t testing.TB) string {
	t.Helper()
	lo := ephemeralLow()
	for range 200 {
		port := freeLow + rand.IntN(lo-freeLow)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			addr := l.Addr().String()
			_ = l.Close()
			return addr
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freeLow is the lowest port FreeAddr picks: above the well-known and
// the usual fixed ports of services.
const freeLow = 20000

// ephemeralLow is the first port of the kernel's ephemeral range
// (ip_local_port_range), 32768 when it cannot be read or leaves no room.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > freeLow+1000 {
				return lo
			}
		}
	}
	return 32768
}
