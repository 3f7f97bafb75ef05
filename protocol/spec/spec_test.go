package spec_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/protocol/spec"
)

var update = flag.Bool("update", false, "rewrite docs/protocol.md's generated tables from the spec")

func load(t *testing.T) *spec.Spec {
	t.Helper()
	s, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSpecCoversProtocol checks that the spec and the Go wire types name
// the same requests, that every request has a row and every reply and
// push a schema, and that every server frame is a reply or a push.
func TestSpecCoversProtocol(t *testing.T) {
	s := load(t)
	reqs := slices.Sorted(slices.Values(protocol.RequestTypes))
	if got := s.Types(spec.FromClient); !slices.Equal(got, reqs) {
		t.Errorf("client schemas %v, protocol.RequestTypes %v", got, reqs)
	}
	for _, r := range reqs {
		row, ok := s.Requests[r]
		if !ok {
			t.Errorf("request %q has no row in frames.json", r)
			continue
		}
		if !slices.Contains(s.Types(spec.FromServer), row.Reply) {
			t.Errorf("request %q: reply %q has no server schema", r, row.Reply)
		}
		if len(row.Errors) == 0 || row.Errors[0] != protocol.CodeBadRequest {
			t.Errorf("request %q: every request can get bad_request (a frame that does not decode), errors %v", r, row.Errors)
		}
	}
	for _, typ := range s.Types(spec.FromServer) {
		isReply := typ == protocol.TypeError
		for _, row := range s.Requests {
			isReply = isReply || row.Reply == typ
		}
		isPush := slices.Contains(s.Pushes, typ)
		if !isReply && !isPush {
			t.Errorf("server frame %q is neither a reply nor a push", typ)
		}
		if isReply && isPush {
			// Told apart by the flag alone, and a push never has an id.
			raw, err := spec.FS().(interface{ ReadFile(string) ([]byte, error) }).ReadFile("schema/server/" + typ + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var sch struct {
				Properties map[string]json.RawMessage `json:"properties"`
			}
			_ = json.Unmarshal(raw, &sch)
			if string(sch.Properties["push"]) == "" {
				t.Errorf("server frame %q is a reply and a push, but its schema has no push flag", typ)
			}
		}
	}
	for _, p := range s.Pushes {
		if !slices.Contains(s.Types(spec.FromServer), p) {
			t.Errorf("push %q has no schema", p)
		}
	}
}

// TestFrames checks the schemas against frames as the Go types encode
// them and against frames they must refuse.
func TestFrames(t *testing.T) {
	s := load(t)
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	conv := &protocol.Conversation{Conv: "g_1", Kind: "group", Title: "T", Owner: "alice", MemberCount: 1, Members: []string{"alice"}, Created: "2026-11-27T01:39:05.310048742Z"}
	good := []struct {
		dir   spec.Direction
		frame string
		push  bool
	}{
		{spec.FromClient, `{"type":"hello","token":"x","device":"phone"}`, false},
		{spec.FromClient, `{"type":"send","id":"r1","conv":"g_1","client_id":"c-1","body":{"text":"hi"},"unknown":1}`, false},
		{spec.FromClient, `{"type":"send","conv":"g_1","client_id":"c-2","kind":"edit","ref":4,"body":{}}`, false},
		{spec.FromClient, `{"type":"sync","conv":"g_1","after":null}`, false},
		{spec.FromClient, `{"type":"mute","conv":"g_1","until":null}`, false},
		{spec.FromServer, enc(protocol.Welcome{Type: "welcome", User: "alice", Session: "s", Heartbeat: 20, ServerTime: "2026-11-27T01:39:04.303826973Z"}), false},
		{spec.FromServer, enc(protocol.ConversationFrame{Type: "conversation", ID: "r1", Conversation: conv}), false},
		{spec.FromServer, enc(protocol.ConversationFrame{Type: "conversation", Push: true, Conversation: conv}), true},
		{spec.FromServer, enc(protocol.BlockedFrame{Type: "blocked", Users: []string{}}), false},
		{spec.FromServer, enc(protocol.BlockedFrame{Type: "blocked", Push: true, Users: []string{"m"}}), true},
		{spec.FromServer, `{"type":"presence","id":"p","users":{"bob":{"online":true,"devices":2}}}`, false},
		{spec.FromServer, `{"type":"presence","push":true,"user":"bob","online":false,"last_seen":"2026-11-27T01:51:10.177844398Z"}`, true},
		{spec.FromServer, enc(protocol.Message{Type: "message", Conv: "g_1", Seq: 3, Sender: "bob", ClientID: "c", TS: "t", Body: json.RawMessage(`{}`), Prev: 1}), true},
		{spec.FromServer, enc(protocol.Errorf(protocol.CodeForbidden, "no")), false},
	}
	for _, g := range good {
		f, err := s.Validate(g.dir, []byte(g.frame))
		if err != nil {
			t.Errorf("%s: %v", g.frame, err)
			continue
		}
		if g.dir == spec.FromServer && s.IsPush(f.Type, f.Push) != g.push {
			t.Errorf("%s: IsPush = %v, want %v", g.frame, !g.push, g.push)
		}
	}
	bad := []struct {
		dir   spec.Direction
		frame string
	}{
		{spec.FromClient, `{"type":"send","conv":"g_1","client_id":"c","body":"hi"}`},
		{spec.FromClient, `{"type":"send","conv":"g_1","client_id":"c","kind":"edit","body":{}}`},
		{spec.FromClient, `{"type":"sync","conv":"g_1","after":"40"}`},
		{spec.FromClient, `{"type":"create","kind":"channel"}`},
		{spec.FromClient, `{"type":"nope"}`},
		{spec.FromClient, `{"id":"x"}`},
		{spec.FromServer, `{"type":"ok","id":"r","extra":1}`},
		{spec.FromServer, `{"type":"message","id":"r","conv":"g","seq":1,"sender":"a","client_id":"c","ts":"t","body":{},"prev":0}`},
		{spec.FromServer, `{"type":"conversation","id":"r","push":true,"conversation":{"conv":"g","kind":"group","title":"","member_count":1,"last_seq":0,"read_seq":0,"unread":0}}`},
		{spec.FromServer, `{"type":"presence","push":true,"users":{}}`},
		{spec.FromServer, `{"type":"error","code":"teapot","message":"x"}`},
	}
	for _, b := range bad {
		if _, err := s.Validate(b.dir, []byte(b.frame)); err == nil {
			t.Errorf("%s validated", b.frame)
		}
	}
}

// TestDocTables checks that docs/protocol.md's per-request and server
// frame tables are the ones the spec renders, and that its error code
// table lists exactly the spec's codes. go test ./protocol/spec -update
// rewrites the two generated tables.
func TestDocTables(t *testing.T) {
	s := load(t)
	const file = "../../docs/protocol.md"
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, g := range []struct{ name, want string }{
		{"requests", s.RequestTable()},
		{"server", s.ServerTable()},
	} {
		begin, end := "<!-- spec:"+g.name+" (generated from protocol/spec; go test ./protocol/spec -update) -->\n", "<!-- /spec:"+g.name+" -->"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("docs/protocol.md has no %q ... %q block", begin, end)
		}
		got := doc[i+len(begin) : j]
		if got == g.want {
			continue
		}
		if *update {
			doc = doc[:i+len(begin)] + g.want + doc[j:]
			continue
		}
		t.Errorf("docs/protocol.md's %s table differs from the spec (go test ./protocol/spec -update)\n got:\n%s\nwant:\n%s", g.name, got, g.want)
	}
	if *update {
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The error code table of "## Errors": one row per code.
	sec := doc[strings.Index(doc, "\n## Errors\n"):]
	sec = sec[:strings.Index(sec[1:], "\n## ")+1]
	var codes []string
	for _, line := range strings.Split(sec, "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			codes = append(codes, rest[:strings.Index(rest, "`")])
		}
	}
	want := []string{protocol.CodeBadRequest, protocol.CodeUnauthorized, protocol.CodeForbidden, protocol.CodeNotFound,
		protocol.CodeTooLarge, protocol.CodeRateLimited, protocol.CodeConflict, protocol.CodeUnavailable, protocol.CodeInternal}
	if !slices.Equal(codes, want) {
		t.Errorf("docs/protocol.md's error codes %v, want %v", codes, want)
	}
	for _, r := range s.Requests {
		for _, c := range r.Errors {
			if !slices.Contains(want, c) {
				t.Errorf("frames.json names error code %q, which is not one of %v", c, want)
			}
		}
	}
}

// TestDocCloses checks that docs/protocol.md's close code table has a row
// for each close the server starts and that its reason is in a table of
// the doc, in backticks, word for word.
func TestDocCloses(t *testing.T) {
	raw, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	sec := doc[strings.Index(doc, "\n## Close codes and HTTP statuses\n"):]
	sec = sec[:strings.Index(sec[1:], "\n## ")+1]
	var rows []string
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "|") {
			rows = append(rows, line)
		}
	}
	for _, c := range protocol.ServerCloses {
		if !strings.Contains(sec, fmt.Sprintf("\n| %d |", c.Code)) {
			t.Errorf("the close code table has no row for %d", c.Code)
		}
		if !slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, "`"+c.Reason+"`") }) {
			t.Errorf("no table of docs/protocol.md gives close %d's reason `%s`", c.Code, c.Reason)
		}
	}
}

// TestCheckerQuietRequests checks how the checker follows typing and read
// without an id: only an error answers them, and a later reply says they
// succeeded.
func TestCheckerQuietRequests(t *testing.T) {
	s, err := spec.Load()
	if err != nil {
		t.Fatal(err)
	}
	run := func(frames ...string) []string {
		c := s.NewChecker(true)
		for _, f := range frames {
			if f[0] == '>' {
				c.Sent([]byte(f[1:]))
			} else {
				c.Received([]byte(f[1:]))
			}
		}
		return c.Problems()
	}
	typing := `>{"type":"typing","conv":"g_1"}`
	ping := `>{"type":"ping","id":"p"}`
	pong := `<{"type":"pong","id":"p"}`
	forbidden := `<{"type":"error","code":"forbidden","message":"not a member"}`
	if p := run(typing, ping, pong); len(p) != 0 {
		t.Errorf("a quiet success: %v", p)
	}
	if p := run(typing, ping, forbidden, pong); len(p) != 0 {
		t.Errorf("a refused typing: %v", p)
	}
	if p := run(typing, ping, `<{"type":"error","code":"too_large","message":"x"}`, pong); len(p) != 1 {
		t.Errorf("an error code typing cannot get: %v", p)
	}
	if p := run(typing, ping, pong, forbidden); len(p) != 1 {
		t.Errorf("an error after the next reply answers nothing: %v", p)
	}
}
