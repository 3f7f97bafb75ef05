package natter_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// minToolchain is the first Go release with the standard library fixes
// issue 14 asks for; a plain `go build` must get it, not the local Go.
const minToolchain = "go1.26.10"

// TestToolchainPinned: go.mod pins a toolchain at least minToolchain, and
// .ci/run's GOTOOLCHAIN names the same one, so CI builds what users build.
func TestToolchainPinned(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^toolchain (go[0-9.]+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatalf("go.mod has no toolchain line; want toolchain %s or newer", minToolchain)
	}
	pinned := string(m[1])
	if !atLeast(pinned, minToolchain) {
		t.Errorf("go.mod pins %s, want %s or newer", pinned, minToolchain)
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	c := regexp.MustCompile(`(?m)^export GOTOOLCHAIN=(\S+)$`).FindSubmatch(ci)
	if c == nil || string(c[1]) != pinned {
		t.Errorf(".ci/run sets GOTOOLCHAIN=%s, go.mod pins %s: keep them the same", c, pinned)
	}
}

// atLeast compares two goX.Y.Z release names.
func atLeast(v, min string) bool {
	a, b := strings.Split(strings.TrimPrefix(v, "go"), "."), strings.Split(strings.TrimPrefix(min, "go"), ".")
	for i := range max(len(a), len(b)) {
		x, y := 0, 0
		if i < len(a) {
			x, _ = strconv.Atoi(a[i])
		}
		if i < len(b) {
			y, _ = strconv.Atoi(b[i])
		}
		if x != y {
			return x > y
		}
	}
	return true
}
