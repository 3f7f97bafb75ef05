package gateway

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/natter-chat/natter/protocol"
)

// TestRequestTypesHandled ties protocol.RequestTypes to the handler
// switch both ways: every type a client may send is handled (a real
// socket gets no "unknown type" for it), and every type the switch
// handles is listed, so tests ranging over the list (the authorization
// matrix) cover it.
func TestRequestTypesHandled(t *testing.T) {
	handled := handledTypes(t)
	for _, typ := range handled {
		if !slices.Contains(protocol.RequestTypes, typ) {
			t.Errorf("the gateway handles %q but protocol.RequestTypes does not list it", typ)
		}
	}
	for _, typ := range protocol.RequestTypes {
		if !slices.Contains(handled, typ) {
			t.Errorf("protocol.RequestTypes lists %q but session.handle has no case for it", typ)
		}
	}

	h := newHarness(t)
	c := h.dial("alice")
	for _, typ := range protocol.RequestTypes {
		err := do(t, c, map[string]any{"type": typ}, nil)
		var pe *protocol.Error
		if errors.As(err, &pe) && strings.Contains(pe.Message, "unknown type") {
			t.Errorf("%q: %v", typ, err)
		}
	}
	err := do(t, c, map[string]any{"type": "no_such_type"}, nil)
	wantCode(t, err, protocol.CodeBadRequest, "unknown type")
}

// handledTypes returns the values of the protocol constants that label
// the cases of session.handle's switch, read from the source.
func handledTypes(t *testing.T) []string {
	t.Helper()
	consts := protocolConsts(t)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "handlers.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "handle" {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			cc, ok := n.(*ast.CaseClause)
			if !ok {
				return true
			}
			for _, e := range cc.List {
				sel, ok := e.(*ast.SelectorExpr)
				if !ok {
					t.Fatalf("case %s of handle is not a protocol constant", fset.Position(e.Pos()))
				}
				v, ok := consts[sel.Sel.Name]
				if !ok {
					t.Fatalf("protocol.%s is not a string constant of package protocol", sel.Sel.Name)
				}
				out = append(out, v)
			}
			return true
		})
	}
	if len(out) == 0 {
		t.Fatal("found no cases in session.handle")
	}
	return out
}

// protocolConsts maps package protocol's string constants to their values.
func protocolConsts(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../protocol/*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						consts[id.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	return consts
}
