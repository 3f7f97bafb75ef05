// Package testbin is what tests that run Natter as separate processes
// share: the natter binary, built once per test binary, and free loopback
// ports.
package testbin

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// FreeAddr returns a loopback host:port whose port was free a moment ago,
// for a process that must be told its address before it starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
