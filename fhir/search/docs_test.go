package search_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite PARAMETERS.md from the parameter table")

// TestParameterDocs keeps PARAMETERS.md, the list of search parameters in
// the documentation, derived from the parameter table: go test
// ./fhir/search -update rewrites it.
func TestParameterDocs(t *testing.T) {
	r := newRegistry(t)
	var b strings.Builder
	b.WriteString("# Search parameters\n\nGenerated from the parameter table (`definitions.go`) by `go test ./fhir/search -update`.\n")
	for _, typ := range r.Types() {
		fmt.Fprintf(&b, "\n## %s\n\n| name | type | expression | definition |\n|---|---|---|---|\n", typ)
		for _, p := range r.Params(typ) {
			expr := p.Expression
			if len(p.Components) > 0 {
				expr = "composite of " + strings.Join(p.Components, " and ")
			}
			if len(p.Targets) > 0 && p.Targets[0] != "Resource" {
				expr += " → " + strings.Join(p.Targets, ", ")
			}
			fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", p.Name, p.Type, strings.ReplaceAll(expr, "|", `\|`), p.URL)
		}
	}
	got := b.String()
	if *update {
		if err := os.WriteFile("PARAMETERS.md", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("PARAMETERS.md")
	if err != nil {
		t.Fatalf("%v (go test ./fhir/search -update writes it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("PARAMETERS.md is out of date (-want +got); go test ./fhir/search -update:\n%s", diff)
	}
}
