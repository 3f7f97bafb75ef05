package gateway

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// TestImports keeps the gateway behind the interfaces it declares: of
// Natter's own packages it may import only the wire types, the NATS
// schema, token checking and the trace headers. The parts behind it are
// adapted in app.
func TestImports(t *testing.T) {
	const module = "github.com/natter-chat/natter/"
	allowed := []string{module + "protocol", module + "nats/schema", module + "auth", module + "tracing"}
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Imports) == 0 {
		t.Fatal("no imports found: the check would pass for nothing")
	}
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, module) && !slices.Contains(allowed, imp) {
			t.Errorf("gateway imports %s; only %v are allowed", imp, allowed)
		}
	}
}
