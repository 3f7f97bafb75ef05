// Command vulndb turns the OSV files of the golang.org/x/vulndb module
// (data/osv, as the Go module proxy serves it) into the v1 database layout
// govulncheck reads with -db file:///dir: index/db.json, index/modules.json,
// index/vulns.json and ID/<id>.json. .ci/vulncheck uses it when
// https://vuln.go.dev cannot be reached. It is golang.org/x/vulndb's
// cmd/indexdb without that module's dependencies; the optional "fixed"
// hint of modules.json is left out, so govulncheck reads every entry of a
// module it finds instead of skipping by version.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type entry struct {
	ID       string   `json:"id"`
	Modified string   `json:"modified"`
	Aliases  []string `json:"aliases,omitempty"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string `json:"id"`
	Modified string `json:"modified"`
}

type module struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type vuln struct {
	ID       string   `json:"id"`
	Modified string   `json:"modified"`
	Aliases  []string `json:"aliases,omitempty"`
}

func main() {
	osvDir := flag.String("osv", "", "directory of OSV JSON files (golang.org/x/vulndb's data/osv)")
	out := flag.String("out", "", "directory to write the database to")
	flag.Parse()
	if *osvDir == "" || *out == "" {
		log.Fatal("vulndb: -osv and -out are required")
	}
	if err := build(*osvDir, *out); err != nil {
		log.Fatal("vulndb: ", err)
	}
}

func build(osvDir, out string) error {
	files, err := filepath.Glob(filepath.Join(osvDir, "GO-*.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no GO-*.json files in %s", osvDir)
	}
	if err := os.MkdirAll(filepath.Join(out, "ID"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "index"), 0o755); err != nil {
		return err
	}
	modules := map[string]*module{}
	var vulns []vuln
	newest := ""
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var e entry
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if e.ID == "" || e.Modified == "" || strings.TrimSuffix(filepath.Base(f), ".json") != e.ID {
			return fmt.Errorf("%s: missing or mismatched id or modified", f)
		}
		if err := os.WriteFile(filepath.Join(out, "ID", e.ID+".json"), data, 0o644); err != nil {
			return err
		}
		vulns = append(vulns, vuln{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		// The repository's files carry a zero modified time (it is set when
		// vuln.go.dev is deployed), so db.json usually says 0001-01-01.
		if e.Modified > newest { // RFC 3339 in UTC compares as text
			newest = e.Modified
		}
		seen := map[string]bool{}
		for _, a := range e.Affected {
			p := a.Package.Name
			if p == "" || seen[p] {
				continue
			}
			seen[p] = true
			if modules[p] == nil {
				modules[p] = &module{Path: p}
			}
			modules[p].Vulns = append(modules[p].Vulns, moduleVuln{ID: e.ID, Modified: e.Modified})
		}
	}
	mods := make([]*module, 0, len(modules))
	for _, m := range modules {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	for _, w := range []struct {
		name string
		v    any
	}{
		{"db.json", map[string]string{"modified": newest}},
		{"modules.json", mods},
		{"vulns.json", vulns},
	} {
		data, err := json.Marshal(w.v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "index", w.name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("vulndb: %d entries, %d modules\n", len(vulns), len(mods))
	return nil
}
