package schema_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/natter-chat/natter/nats/schema"
)

// subjectLiteral matches a string that spells a NATS subject, or part of
// one, of Natter or of NATS itself: a token "chat." / "$KV." / "$JS." /
// "$SRV." / "$SYS." / "_INBOX." at the start or after a separator, or a
// bucket's stream name "KV_...".
var subjectLiteral = regexp.MustCompile(`(^|[^A-Za-z0-9_.$])(chat|\$KV|\$JS|\$SRV|\$SYS|_INBOX)\.|(^|[^A-Za-z0-9_])KV_`)

// names are the streams and buckets: a literal equal to one of them spells
// a name nats/schema owns. Consumer names are left out, they are also the
// role and micro service names ("history", "pushnotify").
var names = []string{
	schema.StreamChat, schema.StreamDead, schema.StreamPushDead, schema.StreamServiceEvents, schema.StreamWebhookDead,
	schema.BucketConversations, schema.BucketPresence, schema.BucketPush, schema.BucketPushSent, schema.BucketServices,
}

// notNames are literals equal to a schema name that mean something else.
var notNames = map[string]string{
	"nats/natsrv/auth.go": schema.StreamChat, // the NATS account, not the stream
}

// skipDirs are not walked: the web client, vendored code, test data.
var skipDirs = map[string]bool{"web": true, "vendor": true, "testdata": true, "node_modules": true}

// TestNothingElseSpellsASubject walks every non-test Go file of the module
// outside nats/schema and fails on a string literal that spells a subject,
// a KV stream or a stream or bucket name: those come from nats/schema's
// builders, so that renaming one renames it everywhere, permissions
// included.
//
// Test files are not checked. A test may spell the wire subject when the
// literal is its point (an operator's `nats req chat.msg.x`, a permission
// that must be refused); tests that merely need a subject should still
// call the builders.
func TestNothingElseSpellsASubject(t *testing.T) {
	root := moduleRoot(t)
	var checked int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "nats/schema" || skipDirs[d.Name()] || (rel != "." && strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		checked++
		for _, l := range stringLiterals(t, path) {
			if subjectLiteral.MatchString(l.value) || (isName(l.value) && notNames[rel] != l.value) {
				t.Errorf("%s:%d: %q spells a subject or name; build it with nats/schema", rel, l.line, l.value)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files under %s: the walk is broken", checked, root)
	}
}

// TestSubjectLiteralPattern keeps the pattern honest both ways.
func TestSubjectLiteralPattern(t *testing.T) {
	for _, s := range []string{"chat.msg.*", "chat.user.", "$KV.PRESENCE.>", "$JS.ACK.CHAT.fanout.>",
		"$JS.API.INFO", "_INBOX.>", "$SRV.>", "KV_PRESENCE", "KV_", "subscribe chat.user.x.msg: %w", "[chat.msg.a]"} {
		if !subjectLiteral.MatchString(s) {
			t.Errorf("%q is not caught", s)
		}
	}
	for _, s := range []string{"natter-chat", "chat", "chat room", "example.chat.app", "conversation: forbidden", "KVSTORE", "c.", "m."} {
		if subjectLiteral.MatchString(s) {
			t.Errorf("%q is caught", s)
		}
	}
}

func isName(s string) bool {
	for _, n := range names {
		if s == n {
			return true
		}
	}
	return false
}

type literal struct {
	value string
	line  int
}

func stringLiterals(t *testing.T, path string) []literal {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []literal
	ast.Inspect(f, func(n ast.Node) bool {
		if _, ok := n.(*ast.ImportSpec); ok {
			return false
		}
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		v, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatalf("%s: %v", fset.Position(lit.Pos()), err)
		}
		out = append(out, literal{v, fset.Position(lit.Pos()).Line})
		return true
	})
	return out
}

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}
