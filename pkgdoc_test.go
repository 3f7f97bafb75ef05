package natter_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// listedPackage is what the layout tests read of `go list -json`.
type listedPackage struct {
	ImportPath   string
	Dir          string
	Name         string
	GoFiles      []string
	TestGoFiles  []string
	XTestGoFiles []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// packages lists every package of the module, test-only ones included.
func packages(t *testing.T) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// TestPackageDocs fails when a package has no doc comment, or has it in
// more than one file (where they would be concatenated in an order nobody
// chose). A package made only of tests documents itself in a doc.go.
func TestPackageDocs(t *testing.T) {
	for _, p := range packages(t) {
		files := p.GoFiles
		if len(files) == 0 {
			files = append(p.TestGoFiles, p.XTestGoFiles...)
		}
		var with []string
		fset := token.NewFileSet()
		for _, f := range files {
			af, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if hasDoc(af) {
				with = append(with, f)
			}
		}
		switch {
		case len(with) == 0:
			t.Errorf("%s has no package doc comment (say what the package is for, in a doc.go or its main file)", p.ImportPath)
		case len(with) > 1:
			t.Errorf("%s has package doc comments in %d files %v: keep one", p.ImportPath, len(with), with)
		}
	}
}

func hasDoc(f *ast.File) bool {
	if f.Doc == nil {
		return false
	}
	text := strings.TrimSpace(f.Doc.Text())
	return text != "" && !strings.HasPrefix(text, "Code generated")
}
