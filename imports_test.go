package natter_test

import (
	"slices"
	"strings"
	"testing"
)

const module = "github.com/natter-chat/natter/"

// layers says which of the module's packages each package's non-test code
// may import. A package that is missing fails the test: adding one means
// deciding where it sits. "*" allows any package that is not test support
// (the wiring: app and the commands).
var layers = map[string][]string{
	// The wire and the schema sit at the bottom.
	"protocol":         {},
	"protocol/spec":    {},
	"nats/schema":      {},
	"metrics":          {},
	"tracing":          {},
	"web":              {},
	"auth":             {"protocol"},
	"client":           {"protocol"},
	"client/service":   {"protocol", "nats/schema"},
	"examples/echobot": {"client/service", "protocol"},
	"nats/natsrv":      {"nats/schema"},
	"nats/pinned":      {"nats/schema"},
	"nats/lease":       {"nats/schema"},
	"nats/kvbatch":     {"protocol", "nats/schema"},
	"nats/retention":   {"nats/schema"},
	// Domain packages know the wire and the schema, not each other's
	// implementations.
	"conversation":     {"protocol", "nats/schema", "nats/kvbatch"},
	"services":         {"protocol", "nats/schema"},
	"services/chatapi": {"conversation", "protocol", "nats/schema"},
	"services/erase":   {"conversation", "history", "protocol", "nats/schema"},
	"services/events":  {"services", "conversation", "protocol", "nats/schema", "nats/pinned"},
	// Webhooks follow Web Push's SSRF rules by its code, and its backoff.
	"services/webhook":         {"services", "pushnotify", "pushnotify/webpush", "nats/schema"},
	"history":                  {"protocol", "nats/schema", "nats/lease", "nats/pinned", "tracing"},
	"history/localstore":       {"history", "protocol"},
	"history/scyllastore":      {"history", "protocol"},
	"presence":                 {"conversation", "protocol", "nats/schema"},
	"fanout":                   {"conversation", "protocol", "nats/schema", "nats/pinned", "tracing"},
	"inbox":                    {"protocol", "nats/schema", "nats/kvbatch"},
	"pushnotify":               {"conversation", "presence", "protocol", "nats/schema", "nats/pinned", "nats/kvbatch"},
	"pushnotify/internal/wire": {"pushnotify"},
	"pushnotify/apns":          {"pushnotify", "pushnotify/internal/wire"},
	"pushnotify/fcm":           {"pushnotify", "pushnotify/internal/wire"},
	"pushnotify/webpush":       {"pushnotify", "pushnotify/internal/wire"},
	// The gateway declares what it needs and is handed the implementations.
	"gateway": {"protocol", "nats/schema", "auth", "tracing"},
	// The operator's tools read what the domain packages keep, through
	// them.
	"admin": {"conversation", "history", "presence", "pushnotify", "protocol", "nats/schema"},

	// Search applies edits by history's one rule (history.Apply); its
	// backends know only its interface.
	"search": {"history", "protocol", "nats/schema", "nats/lease", "nats/pinned"},
	// The backends read the wire's time and expiry formats (expires_at).
	"search/bleveindex": {"search", "protocol"},
	"search/opensearch": {"search", "protocol"},
	"search/searchtest": {"search"}, // test support

	// Attachments know the wire (and the KV errors of nats/schema: a
	// compare-and-set lost); their stores know only their interface.
	"attachments":           {"protocol", "nats/schema"},
	"attachments/fsstore":   {"attachments"},
	"attachments/s3store":   {"attachments"},
	"attachments/storetest": {"attachments"}, // test support

	// Wiring.
	"app":                    {"*"},
	"cmd/natter":             {"*"},
	"cmd/natter-bench":       {"auth", "client", "protocol", "nats/schema"},
	"cmd/natter-conformance": {"app", "auth", "nats/natsrv", "protocol/spec"},
	// Test support: imported only by tests (checked below).
	"nats/natstest":                  {"nats/natsrv", "nats/schema"},
	"history/storetest":              {"history", "protocol"},
	"history/scyllastore/scyllatest": {"history/scyllastore"},
	"pushnotify/pushtest":            {},
	"internal/testbin":               {},
	// Packages made of tests, and the root.
	"":                         {},
	"e2e":                      {},
	"chaos":                    {},
	"deploy":                   {},
	"deploy/cassandra/waitcql": {},
}

// testSupport are packages that exist for tests: production code must not
// import them.
var testSupport = []string{"nats/natstest", "history/storetest", "search/searchtest", "attachments/storetest", "history/scyllastore/scyllatest", "pushnotify/pushtest", "internal/testbin"}

// TestImportLayers fails when a package imports one of the module's
// packages its layer does not allow, or when production code imports a
// test-support package.
func TestImportLayers(t *testing.T) {
	for _, p := range packages(t) {
		name := strings.TrimPrefix(p.ImportPath+"/", module)
		name = strings.TrimSuffix(name, "/")
		allowed, ok := layers[name]
		if !ok {
			t.Errorf("package %q is not in imports_test.go's layers: decide what it may import", name)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			switch {
			case slices.Contains(testSupport, dep) && !slices.Contains(testSupport, name):
				t.Errorf("%s imports the test-support package %s outside its tests", name, dep)
			case slices.Contains(allowed, "*"):
			case !slices.Contains(allowed, dep):
				t.Errorf("%s imports %s, which its layer does not allow (allowed: %v)", name, dep, allowed)
			}
		}
	}
}
