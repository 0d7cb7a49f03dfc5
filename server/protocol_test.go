package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"infusion/server"
)

// protocolItem is a resource of a protocol case: an example file changed
// by a JSON Patch, written with an id.
type protocolItem struct {
	Type, ID, File string
	Patch          json.RawMessage
}

type protocolFinding struct{ Rule, Severity string }

type protocolCase struct {
	Name   string
	Use    []string
	Setup  []protocolItem
	Write  protocolItem
	Expect []protocolFinding
}

func loadProtocolCases(t *testing.T) (map[string][]protocolItem, []protocolCase) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "protocol", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Fixtures map[string][]protocolItem
		Cases    []protocolCase
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	return file.Fixtures, file.Cases
}

// body renders an item: the example with the patch applied and the id set.
func (it protocolItem) body(t *testing.T) string {
	t.Helper()
	doc := []byte(example(t, filepath.Join("valid", it.File)))
	if len(it.Patch) > 0 {
		p, err := jsonpatch.DecodePatch(it.Patch)
		if err != nil {
			t.Fatalf("%s: %v", it.File, err)
		}
		if doc, err = p.Apply(doc); err != nil {
			t.Fatalf("%s: %v", it.File, err)
		}
	}
	return withID(t, string(doc), it.ID)
}

// put writes an item and returns the response.
func (ts *testServer) put(t *testing.T, it protocolItem, headers ...string) response {
	t.Helper()
	r := ts.do(t, http.MethodPut, "/"+it.Type+"/"+it.ID, it.body(t), headers...)
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("PUT %s/%s: %d %s", it.Type, it.ID, r.status, r.body)
	}
	return r
}

// openFindings returns the open DetectedIssues implicating a resource, as
// rule and DetectedIssue severity.
func (ts *testServer) openFindings(t *testing.T, ref string) ([]protocolFinding, []map[string]any) {
	t.Helper()
	r := ts.do(t, http.MethodGet, "/DetectedIssue?status=final&implicated="+ref, "")
	if r.status != http.StatusOK {
		t.Fatalf("search: %d %s", r.status, r.body)
	}
	var out []protocolFinding
	var bodies []map[string]any
	for _, e := range asList(r.json(t)["entry"]) {
		res := e.(map[string]any)["resource"].(map[string]any)
		bodies = append(bodies, res)
		out = append(out, protocolFinding{Rule: findingRule(res), Severity: res["severity"].(string)})
	}
	return sortFindings(out), bodies
}

func findingRule(di map[string]any) string {
	for _, ext := range asList(di["extension"]) {
		for _, sub := range asList(ext.(map[string]any)["extension"]) {
			if s := sub.(map[string]any); s["url"] == "rule" {
				return s["valueCode"].(string)
			}
		}
	}
	return ""
}

var detectedSeverity = map[string]string{"error": "high", "warning": "moderate", "information": "low"}

func sortFindings(fs []protocolFinding) []protocolFinding {
	slices.SortFunc(fs, func(a, b protocolFinding) int { return strings.Compare(a.Rule+a.Severity, b.Rule+b.Severity) })
	return fs
}

// TestProtocolRules runs the rule cases of testdata/protocol/cases.json over
// the HTTP API: each write must raise exactly the findings its case lists,
// as DetectedIssues and as business-rule issues of the write's
// OperationOutcome.
func TestProtocolRules(t *testing.T) {
	fixtures, cases := loadProtocolCases(t)
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, server.Config{})
			for _, name := range tc.Use {
				if fixtures[name] == nil {
					t.Fatalf("no fixture %q", name)
				}
				for _, it := range fixtures[name] {
					ts.put(t, it)
				}
			}
			for _, it := range tc.Setup {
				ts.put(t, it)
			}
			r := ts.put(t, tc.Write, "Prefer: return=OperationOutcome")
			var want []protocolFinding
			for _, f := range tc.Expect {
				want = append(want, protocolFinding{Rule: f.Rule, Severity: detectedSeverity[f.Severity]})
			}
			got, bodies := ts.openFindings(t, tc.Write.Type+"/"+tc.Write.ID)
			if fmt.Sprint(got) != fmt.Sprint(sortFindings(want)) {
				var details []string
				for _, b := range bodies {
					details = append(details, findingRule(b)+": "+b["detail"].(string))
				}
				t.Fatalf("findings %v, want %v\n%s", got, sortFindings(want), strings.Join(details, "\n"))
			}
			var outcome struct {
				Issue []struct {
					Severity, Code string
					Expression     []string
				}
			}
			if err := json.Unmarshal(r.body, &outcome); err != nil {
				t.Fatal(err)
			}
			var rules []protocolFinding
			for _, is := range outcome.Issue {
				if is.Code != "business-rule" {
					continue
				}
				if len(is.Expression) != 1 || !strings.HasPrefix(is.Expression[0], tc.Write.Type+".") {
					t.Errorf("issue expression %v does not name an element of the %s", is.Expression, tc.Write.Type)
				}
				rules = append(rules, protocolFinding{Severity: detectedSeverity[is.Severity]})
			}
			if len(rules) != len(want) {
				t.Errorf("the OperationOutcome has %d business-rule issues, want %d: %s", len(rules), len(want), r.body)
			}
			for _, b := range bodies {
				refs := asList(b["implicated"])
				if len(refs) == 0 || !strings.HasPrefix(refs[0].(map[string]any)["reference"].(string), tc.Write.Type+"/"+tc.Write.ID+"/_history/") {
					t.Errorf("implicated %v does not start with the written version", refs)
				}
				if b["detail"] == "" || b["identifiedDateTime"] == nil || b["code"] == nil {
					t.Errorf("finding without detail, identified or code: %v", b)
				}
			}
		})
	}
}
