// Package spec is the machine-readable definition of protocol v1, the
// source of truth docs/protocol.md's frame tables are checked against: a
// JSON Schema (draft 2020-12) per frame type in each direction
// (schema/client/<type>.json, schema/server/<type>.json, with shared
// definitions in schema/common.json) and frames.json, which says for each
// request its reply type, the error codes it can answer and whether it is
// answered without an id, and which server frames are pushes. The e2e
// suite validates every frame on its sockets with Spec.Check, and
// cmd/natter-conformance checks an SDK's recorded traffic the same way.
package spec

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed frames.json schema
var files embed.FS

// FS holds frames.json and the schema directory, for tools that serve or
// copy them.
func FS() fs.FS { return files }

// base is the $id prefix of every schema file.
const base = "https://natter.invalid/spec/"

// Direction says who sent a frame.
type Direction int

const (
	// FromClient is a frame a client sent: a request.
	FromClient Direction = iota
	// FromServer is a frame the server sent: a reply or a push.
	FromServer
)

func (d Direction) dir() string {
	if d == FromClient {
		return "client"
	}
	return "server"
}

// Request is one row of the per-request table.
type Request struct {
	// Reply is the type of the frame that answers the request when it
	// succeeds.
	Reply string `json:"reply"`
	// Errors lists the codes an error answer to it can carry.
	Errors []string `json:"errors"`
	// ReplyWithoutID says whether the request's success is answered when
	// it has no id. When false (typing, read) only an error answers it
	// then.
	ReplyWithoutID bool `json:"reply_without_id"`
}

// Spec is the loaded definition.
type Spec struct {
	// Requests is the per-request table, by request type.
	Requests map[string]Request
	// Pushes are the server frame types that are pushes.
	Pushes []string

	schemas [2]map[string]*jsonschema.Schema
}

// Load compiles the embedded schemas.
func Load() (*Spec, error) {
	var table struct {
		Requests map[string]Request `json:"requests"`
		Pushes   []string           `json:"pushes"`
	}
	data, err := files.ReadFile("frames.json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &table); err != nil {
		return nil, fmt.Errorf("spec: frames.json: %w", err)
	}
	s := &Spec{Requests: table.Requests, Pushes: table.Pushes}
	c := jsonschema.NewCompiler()
	var names [2][]string
	err = fs.WalkDir(files, "schema", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("spec: %s: %w", p, err)
		}
		rel := strings.TrimPrefix(p, "schema/")
		if err := c.AddResource(base+rel, doc); err != nil {
			return fmt.Errorf("spec: %s: %w", p, err)
		}
		for i, dir := range []string{"client/", "server/"} {
			if strings.HasPrefix(rel, dir) {
				names[i] = append(names[i], strings.TrimSuffix(path.Base(rel), ".json"))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, dir := range []string{"client/", "server/"} {
		s.schemas[i] = make(map[string]*jsonschema.Schema, len(names[i]))
		for _, typ := range names[i] {
			sch, err := c.Compile(base + dir + typ + ".json")
			if err != nil {
				return nil, fmt.Errorf("spec: %s%s: %w", dir, typ, err)
			}
			s.schemas[i][typ] = sch
		}
	}
	return s, nil
}

// Types returns the frame types defined for a direction, sorted.
func (s *Spec) Types(d Direction) []string {
	out := make([]string, 0, len(s.schemas[d]))
	for t := range s.schemas[d] {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// IsPush reports whether a server frame of type typ is a push: a type
// that is only a push, or one that is also a reply and carries
// "push": true.
func (s *Spec) IsPush(typ string, flagged bool) bool {
	if !slices.Contains(s.Pushes, typ) {
		return false
	}
	return flagged || !s.isReply(typ)
}

func (s *Spec) isReply(typ string) bool {
	if typ == "error" {
		return true
	}
	for _, r := range s.Requests {
		if r.Reply == typ {
			return true
		}
	}
	return false
}

// Errors of Validate.
var (
	// ErrNoType: the frame is not a JSON object with a string type.
	ErrNoType = errors.New("spec: not a JSON object with a string type")
	// ErrUnknownType: no schema defines the frame's type in its direction.
	ErrUnknownType = errors.New("spec: unknown frame type")
)

// Frame is what Validate read of a frame.
type Frame struct {
	Type string
	ID   string
	// Push is the frame's push flag.
	Push bool
}

// Validate checks one frame sent in direction d against its type's
// schema and returns its type and id.
func (s *Spec) Validate(d Direction, frame []byte) (Frame, error) {
	var head struct {
		Type *string `json:"type"`
		ID   any     `json:"id"`
		Push any     `json:"push"`
	}
	if json.Unmarshal(frame, &head) != nil || head.Type == nil {
		return Frame{}, ErrNoType
	}
	f := Frame{Type: *head.Type}
	f.ID, _ = head.ID.(string)
	f.Push = head.Push == true
	sch, ok := s.schemas[d][f.Type]
	if !ok {
		return f, fmt.Errorf("%w %q from the %s", ErrUnknownType, f.Type, d.dir())
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(frame))
	if err != nil {
		return f, fmt.Errorf("spec: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return f, fmt.Errorf("spec: %s frame %q: %w", d.dir(), f.Type, err)
	}
	return f, nil
}

// RequestTable renders the per-request table as the Markdown docs/protocol.md
// holds between its spec:requests markers.
func (s *Spec) RequestTable() string {
	var b strings.Builder
	b.WriteString("| request | reply | errors | answered without `id` |\n|---|---|---|---|\n")
	for _, t := range s.Types(FromClient) {
		r := s.Requests[t]
		codes := make([]string, len(r.Errors))
		for i, c := range r.Errors {
			codes[i] = "`" + c + "`"
		}
		without := "yes"
		if !r.ReplyWithoutID {
			without = "errors only: no `ok`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", t, r.Reply, strings.Join(codes, ", "), without)
	}
	return b.String()
}

// ServerTable renders the table of server frame types, each a reply, a
// push or both, as docs/protocol.md holds between its spec:server markers.
func (s *Spec) ServerTable() string {
	var b strings.Builder
	b.WriteString("| frame | reply to | push | carries `id` |\n|---|---|---|---|\n")
	for _, t := range s.Types(FromServer) {
		var to []string
		for _, r := range slices.Sorted(maps.Keys(s.Requests)) {
			if s.Requests[r].Reply == t {
				to = append(to, "`"+r+"`")
			}
		}
		if t == "error" {
			to = []string{"any request"}
		}
		reply, push := len(to) > 0, slices.Contains(s.Pushes, t)
		var pushCol, idCol string
		switch {
		case reply && push:
			pushCol, idCol = "yes, with `\"push\": true`", "as a reply, when the request had one; never as a push"
		case push:
			pushCol, idCol = "yes", "never"
		default:
			pushCol, idCol = "no", "when the request had one"
		}
		if !reply {
			to = []string{"none"}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", t, strings.Join(to, ", "), pushCol, idCol)
	}
	return b.String()
}
