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

func loadProtocolCases(t testing.TB) (map[string][]protocolItem, []protocolCase) {
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
func (it protocolItem) body(t testing.TB) string {
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

// TestFindingLifecycle follows a finding through later versions of the
// order it implicates: kept while the problem stays, closed (cancelled,
// never deleted) when it goes, a new one for a new problem, and all closed
// when the order is deleted.
func TestFindingLifecycle(t *testing.T) {
	fixtures, _ := loadProtocolCases(t)
	ts := newTestServer(t, server.Config{})
	for _, it := range fixtures["ketamine-patient"] {
		ts.put(t, it)
	}
	order := protocolItem{Type: "MedicationRequest", ID: "o", File: "medicationrequest-ketamine-crps.json",
		Patch: json.RawMessage(`[{"op":"replace","path":"/dosageInstruction/0/doseAndRate/0/rateQuantity/value","value":0.51},
			{"op":"replace","path":"/dosageInstruction/0/timing/repeat/duration","value":3}]`)}
	ts.put(t, order)
	got, bodies := ts.openFindings(t, "MedicationRequest/o")
	if len(got) != 1 || got[0].Rule != "order-rate" {
		t.Fatalf("findings %v", got)
	}
	first := bodies[0]["id"].(string)

	// The same problem in version 2: the same finding, no new version.
	ts.put(t, order)
	if _, bodies := ts.openFindings(t, "MedicationRequest/o"); len(bodies) != 1 || bodies[0]["id"] != first ||
		bodies[0]["meta"].(map[string]any)["versionId"] != "1" {
		t.Fatalf("the unchanged finding was rewritten: %v", bodies)
	}

	// Version 3 fixes the rate and sets a home setting: the rate finding is
	// closed, a setting finding opened.
	order.Patch = json.RawMessage(`[{"op":"replace","path":"/category/0/coding/0/code","value":"community"}]`)
	ts.put(t, order)
	got, _ = ts.openFindings(t, "MedicationRequest/o")
	if len(got) != 1 || got[0].Rule != "order-setting" {
		t.Fatalf("after the fix: %v", got)
	}
	closed := ts.do(t, http.MethodGet, "/DetectedIssue/"+first, "").json(t)
	if closed["status"] != "cancelled" || closed["meta"].(map[string]any)["versionId"] != "2" {
		t.Errorf("the fixed finding is %v (version %v), want cancelled as version 2", closed["status"], closed["meta"])
	}
	if n := len(asList(ts.do(t, http.MethodGet, "/DetectedIssue?implicated=MedicationRequest/o", "").json(t)["entry"])); n != 2 {
		t.Errorf("%d findings implicate the order, want 2 (one open, one closed)", n)
	}
	if n := len(asList(ts.do(t, http.MethodGet, "/DetectedIssue?patient=Patient/pat-crps-1&code=http://terminology.hl7.org/CodeSystem/v3-ActCode|DOSEH", "").json(t)["entry"])); n != 1 {
		t.Errorf("search by patient and code found %d, want 1", n)
	}

	// Deleting the order closes its findings.
	if r := ts.do(t, http.MethodDelete, "/MedicationRequest/o", ""); r.status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if got, _ := ts.openFindings(t, "MedicationRequest/o"); len(got) != 0 {
		t.Errorf("open findings after the delete: %v", got)
	}
}

// TestFindingFollowsPatient: an order moved to another patient with its
// problem unchanged keeps its finding, rewritten to name the new patient,
// and the outcome figures count it there.
func TestFindingFollowsPatient(t *testing.T) {
	fixtures, _ := loadProtocolCases(t)
	ts := newTestServer(t, server.Config{})
	for _, it := range fixtures["ketamine-patient"] {
		ts.put(t, it)
	}
	const rate = `{"op":"replace","path":"/dosageInstruction/0/doseAndRate/0/rateQuantity/value","value":0.51}`
	order := protocolItem{Type: "MedicationRequest", ID: "o", File: "medicationrequest-ketamine-crps.json", Patch: json.RawMessage("[" + rate + "]")}
	ts.put(t, order)
	rateFinding := func() map[string]any {
		t.Helper()
		_, bodies := ts.openFindings(t, "MedicationRequest/o")
		for _, b := range bodies {
			if findingRule(b) == "order-rate" {
				return b
			}
		}
		t.Fatalf("no order-rate finding among %v", bodies)
		return nil
	}
	before := rateFinding()

	order.Patch = json.RawMessage(`[` + rate + `,{"op":"replace","path":"/subject/reference","value":"Patient/pat-other"}]`)
	ts.put(t, order)
	after := rateFinding()
	if after["id"] != before["id"] || after["patient"].(map[string]any)["reference"] != "Patient/pat-other" ||
		after["meta"].(map[string]any)["versionId"] != "2" {
		t.Errorf("after the move: DetectedIssue/%v version %v of %v; want DetectedIssue/%v version 2 of Patient/pat-other",
			after["id"], after["meta"].(map[string]any)["versionId"], after["patient"], before["id"])
	}
	if got := ts.do(t, http.MethodGet, "/DetectedIssue?status=final&patient=Patient/pat-crps-1&_summary=count", "").json(t)["total"]; got != 0.0 {
		t.Errorf("open findings of Patient/pat-crps-1: %v, want 0", got)
	}
	_, open := ts.openFindings(t, "MedicationRequest/o")
	counted := 0.0
	for k, v := range outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes", "")) {
		if strings.HasPrefix(k, "0.finding.") && strings.HasSuffix(k, ".count") {
			counted += v.(float64)
		}
	}
	if counted != float64(len(open)) {
		t.Errorf("$infusion-outcomes counts %v findings, want the order's %d open ones", counted, len(open))
	}
}

// TestProtocolPolicy checks off, warn and enforce on the same write.
func TestProtocolPolicy(t *testing.T) {
	order := protocolItem{Type: "MedicationRequest", ID: "o", File: "medicationrequest-gabapentin-iv.json"}
	for _, tt := range []struct {
		policy   server.Policy
		status   int
		findings int
	}{
		{server.PolicyOff, http.StatusCreated, 0},
		{server.PolicyWarn, http.StatusCreated, 1},
		{server.PolicyEnforce, http.StatusUnprocessableEntity, 0},
	} {
		t.Run(string(tt.policy), func(t *testing.T) {
			ts := newTestServer(t, server.Config{Protocol: tt.policy})
			r := ts.do(t, http.MethodPut, "/MedicationRequest/o", order.body(t))
			if r.status != tt.status {
				t.Fatalf("PUT: %d %s, want %d", r.status, r.body, tt.status)
			}
			if got, _ := ts.openFindings(t, "MedicationRequest/o"); len(got) != tt.findings {
				t.Errorf("%d findings, want %d", len(got), tt.findings)
			}
			if tt.policy == server.PolicyEnforce {
				if ex := r.issueExpressions(t); len(ex) != 1 || ex[0] != "MedicationRequest.dosageInstruction[0].route" {
					t.Errorf("expressions %v", ex)
				}
				if n := ts.historyCount(t); n != 0 {
					t.Errorf("the refused write left %d versions", n)
				}
			}
			v := ts.do(t, http.MethodPost, "/MedicationRequest/$validate", order.body(t))
			if hasBusinessRule := strings.Contains(string(v.body), `"business-rule"`); hasBusinessRule != (tt.policy != server.PolicyOff) {
				t.Errorf("$validate under %s: %s", tt.policy, v.body)
			}
		})
	}
}

// TestFormularyFile edits the formulary and sees the checks follow: a
// tighter rate limit raises a finding the default does not, and a broken
// file stops the server from starting.
func TestFormularyFile(t *testing.T) {
	fixtures, _ := loadProtocolCases(t)
	src, err := os.ReadFile(filepath.Join("..", "mapping", "protocol", "formulary.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tight := filepath.Join(dir, "tight.yaml")
	edited := strings.Replace(string(src), "      low: 0.1\n      high: 0.5\n", "      low: 0.1\n      high: 0.3\n", 1)
	edited = strings.Replace(edited, `version: "2026.11.1"`, `version: "2026.11.1-tight"`, 1)
	if edited == string(src) {
		t.Fatal("the edit did not apply")
	}
	if err := os.WriteFile(tight, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	order := protocolItem{Type: "MedicationRequest", ID: "o", File: "medicationrequest-ketamine-crps.json"}
	for _, tt := range []struct {
		file, version string
		want          int
	}{{"", "2026.11.1", 0}, {tight, "2026.11.1-tight", 1}} {
		ts := newTestServer(t, server.Config{Formulary: tt.file})
		for _, it := range fixtures["ketamine-patient"] {
			ts.put(t, it)
		}
		ts.put(t, order)
		if got, _ := ts.openFindings(t, "MedicationRequest/o"); len(got) != tt.want {
			t.Errorf("formulary %q: findings %v, want %d", tt.file, got, tt.want)
		}
		f := ts.do(t, http.MethodGet, "/$formulary", "").json(t)
		if f["version"] != tt.version || !strings.HasPrefix(f["checksum"].(string), "sha256:") {
			t.Errorf("$formulary version %v checksum %v", f["version"], f["checksum"])
		}
		cs := ts.do(t, http.MethodGet, "/metadata", "").json(t)
		if doc := cs["rest"].([]any)[0].(map[string]any)["documentation"].(string); !strings.Contains(doc, tt.version) {
			t.Errorf("the CapabilityStatement does not name version %s: %s", tt.version, doc)
		}
	}
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte(strings.Replace(string(src), "unit: mg/kg/h\n      low: 0.1", "unit: mg/parsec\n      low: 0.1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = server.New(t.Context(), server.Config{Formulary: broken, DBPath: filepath.Join(dir, "x.db")})
	if err == nil || !strings.Contains(err.Error(), `protocol "ketamine-iv-chronic-pain": rate.unit`) {
		t.Errorf("a broken formulary: %v", err)
	}
}

// TestTransactionFindings checks that findings come back in the
// transaction-response outcomes and are stored with the entries.
func TestTransactionFindings(t *testing.T) {
	order := protocolItem{Type: "MedicationRequest", ID: "o", File: "medicationrequest-gabapentin-iv.json"}
	ts := newTestServer(t, server.Config{})
	bundle := `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:0b9a3c0e-4d4f-4f7e-9d53-0c1e2f3a4b5c",
		"resource":` + order.body(t) + `,"request":{"method":"POST","url":"MedicationRequest"}}]}`
	r := ts.do(t, http.MethodPost, "/", bundle)
	if r.status != http.StatusOK {
		t.Fatalf("transaction: %d %s", r.status, r.body)
	}
	entry := asList(r.json(t)["entry"])[0].(map[string]any)
	resp := entry["response"].(map[string]any)
	outcome, _ := json.Marshal(resp["outcome"])
	if !strings.Contains(string(outcome), "business-rule") || entry["resource"] == nil {
		t.Errorf("entry response %v", resp)
	}
	id := entry["resource"].(map[string]any)["id"].(string)
	if got, _ := ts.openFindings(t, "MedicationRequest/"+id); len(got) != 1 {
		t.Errorf("findings %v", got)
	}
}
