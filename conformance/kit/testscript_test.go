package kit_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"infusion/conformance/kit"
	"infusion/fhir"
	"infusion/fhir/fhirtest"
	"infusion/server/servertest"
)

const scriptsDir = "../../testdata/testscripts"

func runScripts(t *testing.T, base string, scripts ...string) *kit.Report {
	t.Helper()
	rep, err := kit.Run(context.Background(), kit.Options{Base: base, TestScripts: scripts})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func scriptChecks(rep *kit.Report) map[string]kit.Check {
	out := map[string]kit.Check{}
	for _, c := range rep.Checks {
		if c.Suite == kit.SuiteTestScript {
			out[c.ID] = c
		}
	}
	return out
}

// testReport is what the tests read of a TestReport.
type testReport struct {
	ResourceType string `json:"resourceType"`
	Status       string `json:"status"`
	TestScript   struct {
		Reference string `json:"reference"`
	} `json:"testScript"`
	Result string  `json:"result"`
	Score  float64 `json:"score"`
	Tester string  `json:"tester"`
	Issued string  `json:"issued"`
	Setup  *struct {
		Action []trAction `json:"action"`
	} `json:"setup"`
	Test []struct {
		Name   string     `json:"name"`
		Action []trAction `json:"action"`
	} `json:"test"`
	Teardown *struct {
		Action []trAction `json:"action"`
	} `json:"teardown"`
}

type trAction struct {
	Operation *struct{ Result, Message string } `json:"operation"`
	Assert    *struct{ Result, Message string } `json:"assert"`
}

func readReports(t *testing.T, rep *kit.Report) map[string]testReport {
	t.Helper()
	dir := t.TempDir()
	if err := rep.WriteTestReports(dir); err != nil {
		t.Fatal(err)
	}
	out := map[string]testReport{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fhirtest.CheckResource(t, data)
		var tr testReport
		if err := json.Unmarshal(data, &tr); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = tr
	}
	return out
}

// TestShippedTestScripts runs testdata/testscripts against this server:
// every assert passes, and the TestReports are valid R4.
func TestShippedTestScripts(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	rep := runScripts(t, ts.URL, scriptsDir)
	checks := scriptChecks(rep)
	for _, id := range []string{
		"testscript.ketamine-order-read.setup", "testscript.ketamine-order-read.read-order", "testscript.ketamine-order-read.teardown",
		"testscript.administration-search.setup", "testscript.administration-search.search-by-request",
		"testscript.administration-search.read-order-of-administration", "testscript.administration-search.teardown",
		"testscript.pain-score-search.setup", "testscript.pain-score-search.search-by-code-and-date", "testscript.pain-score-search.teardown",
		"testscript.invalid-order.create-invalid-order",
	} {
		c, ok := checks[id]
		if !ok {
			t.Errorf("no check %s", id)
			continue
		}
		if c.Status != kit.Pass {
			t.Errorf("%s: %s %s: %s", id, c.Status, c.Level, c.Reason)
			for _, ex := range c.Exchanges {
				t.Logf("  %s %s → %d %s", ex.Method, ex.URL, ex.Status, ex.ResponseBody)
			}
		}
	}
	if len(checks) != 11 {
		t.Errorf("%d testscript checks, want 11: %v", len(checks), checks)
	}
	if rep.ShallFailed() {
		t.Errorf("a SHALL check failed")
	}
	if len(rep.CleanupErrors) > 0 {
		t.Errorf("cleanup: %v", rep.CleanupErrors)
	}
	reports := readReports(t, rep)
	if len(reports) != 4 {
		t.Fatalf("%d TestReports, want 4", len(reports))
	}
	for name, tr := range reports {
		if tr.ResourceType != "TestReport" || tr.Result != "pass" || tr.Score != 100 || tr.Tester != kit.Tester || tr.Issued == "" || tr.Status != "completed" {
			t.Errorf("%s: %+v", name, tr)
		}
		if want := "https://infusion.example.org/fhir/TestScript/" + name; tr.TestScript.Reference != want {
			t.Errorf("%s: testScript %q, want %q", name, tr.TestScript.Reference, want)
		}
		for _, test := range tr.Test {
			for _, a := range test.Action {
				if a.Assert != nil && a.Assert.Result != "pass" {
					t.Errorf("%s %s: assert %s: %s", name, test.Name, a.Assert.Result, a.Assert.Message)
				}
				if a.Operation != nil && a.Operation.Result != "pass" {
					t.Errorf("%s %s: operation %s: %s", name, test.Name, a.Operation.Result, a.Operation.Message)
				}
			}
		}
	}
	if n := len(reports["ketamine-order-read"].Test[0].Action); n != 11 {
		t.Errorf("read-order has %d actions in the report, want 11", n)
	}
	// Nothing tagged with the run is left.
	for _, typ := range []string{"MedicationRequest", "MedicationAdministration", "Observation"} {
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
			t.Errorf("%d %s left after the run", n, typ)
		}
	}
}

// TestShippedTestScriptsValid checks the shipped scripts are valid R4, but
// for two things TestScripts do by design that this project's validator
// (stricter than R4 on references) rejects: a fixture naming a file
// relative to the script, and a ${variable} in a reference of a fixture.
func TestShippedTestScriptsValid(t *testing.T) {
	t.Parallel()
	fixtureRef := regexp.MustCompile(`^TestScript\.fixture\[\d+\]\.resource$`)
	files, err := kit.TestScriptFiles(scriptsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := fhir.Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		issues, err := fhirtest.Validator(t).Validate(res)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range issues {
			if is.Severity != fhir.SeverityError && is.Severity != fhir.SeverityFatal {
				continue
			}
			if strings.Contains(is.Diagnostics, "${") || (len(is.Expression) == 1 && fixtureRef.MatchString(is.Expression[0]) && strings.Contains(is.Diagnostics, "not a valid reference")) {
				continue
			}
			t.Errorf("%s: %v: %s", filepath.Base(f), is.Expression, is.Diagnostics)
		}
	}
}

// writeScript writes a variant of the shipped ketamine script.
func writeScript(t *testing.T, edit func(s string) string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(scriptsDir, "ketamine-order-read.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := edit(string(data))
	f := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestTestScriptWrongAssert: a deliberately wrong assert fails exactly that
// assert, as SHALL, and the TestReport says fail.
func TestTestScriptWrongAssert(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	f := writeScript(t, func(s string) string {
		return strings.Replace(s, `"operator": "equals", "value": "6130"`, `"operator": "equals", "value": "9999"`, 1)
	})
	rep := runScripts(t, ts.URL, f)
	var failedIDs []string
	for _, c := range rep.Checks {
		if c.Status == kit.Fail {
			failedIDs = append(failedIDs, c.ID)
		}
	}
	if !slices.Equal(failedIDs, []string{"testscript.ketamine-order-read.read-order"}) {
		t.Fatalf("failed checks %v", failedIDs)
	}
	c := scriptChecks(rep)["testscript.ketamine-order-read.read-order"]
	if c.Level != kit.Shall || !strings.Contains(c.Reason, "medication-code") || strings.Contains(c.Reason, "dosage-rate") {
		t.Errorf("check %+v", c)
	}
	if !rep.ShallFailed() {
		t.Error("the run does not fail")
	}
	tr := readReports(t, rep)["ketamine-order-read"]
	if tr.Result != "fail" {
		t.Errorf("result %q", tr.Result)
	}
	var results []string
	for _, a := range tr.Test[0].Action {
		if a.Assert != nil {
			results = append(results, a.Assert.Result)
		}
	}
	want := []string{"pass", "pass", "pass", "pass", "fail", "pass", "pass", "pass", "pass", "pass"}
	if !slices.Equal(results, want) {
		t.Errorf("assert results %v, want %v", results, want)
	}
	if tr.Score >= 100 || tr.Score <= 0 {
		t.Errorf("score %v", tr.Score)
	}
}

// TestTestScriptWarningOnly: a failed warningOnly assert is reported but
// does not fail the run.
func TestTestScriptWarningOnly(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	f := writeScript(t, func(s string) string {
		return strings.Replace(s, `"headerField": "ETag", "operator": "notEmpty"`, `"headerField": "X-Not-There", "operator": "notEmpty"`, 1)
	})
	rep := runScripts(t, ts.URL, f)
	c := scriptChecks(rep)["testscript.ketamine-order-read.read-order"]
	if c.Status != kit.Fail || c.Level != kit.Should || !strings.Contains(c.Reason, "warning only") {
		t.Errorf("check %+v", c)
	}
	if rep.ShallFailed() {
		t.Error("a warningOnly failure fails the run")
	}
	tr := readReports(t, rep)["ketamine-order-read"]
	last := tr.Test[0].Action[len(tr.Test[0].Action)-1]
	if tr.Result != "pass" || last.Assert == nil || last.Assert.Result != "warning" {
		t.Errorf("result %q, last action %+v", tr.Result, last.Assert)
	}
}

// TestTestScriptUnsupported: what the kit does not run is a failed load
// check naming it, and nothing is sent.
func TestTestScriptUnsupported(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	for _, tc := range []struct{ edit, want string }{
		{`"expression": "MedicationRequest.status = 'active'"`, "assert.path"},
		{`"expression": "status", "compareToSourceId"`, "compareToSourcePath"},
	} {
		f := writeScript(t, func(s string) string {
			if tc.want == "assert.path" {
				return strings.Replace(s, tc.edit, `"path": "fhir:MedicationRequest/fhir:status/@value"`, 1)
			}
			return strings.Replace(s, `"compareToSourceExpression": "MedicationRequest.status"`, `"compareToSourcePath": "fhir:MedicationRequest/fhir:status/@value"`, 1)
		})
		rep := runScripts(t, ts.URL, f)
		c := scriptChecks(rep)["testscript.script.load"]
		if c.Status != kit.Fail || !strings.Contains(c.Reason, tc.want) {
			t.Errorf("%s: %+v", tc.want, c)
		}
		if len(rep.Created) != 0 {
			t.Errorf("%s: created %v", tc.want, rep.Created)
		}
	}
}

// TestTestScriptOperations runs update, vread, history, patch, transaction
// and batch, and a setup that fails (its tests are skipped).
func TestTestScriptOperations(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	order := `{"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": {"reference": "Patient/p"},
	  "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6130"}]}}`
	write("order.json", order)
	write("order-v2.json", strings.Replace(order, `"active"`, `"on-hold"`, 1))
	write("patch.json", `[{"op": "replace", "path": "/status", "value": "completed"}]`)
	write("tx.json", `{"resourceType": "Bundle", "type": "transaction", "entry": [
	  {"fullUrl": "urn:uuid:6f1f1a52-8a53-4b0e-9d7e-0d6d4c1b2a01", "resource": `+order+`, "request": {"method": "POST", "url": "MedicationRequest"}}]}`)
	write("batch.json", `{"resourceType": "Bundle", "type": "batch", "entry": [
	  {"resource": `+order+`, "request": {"method": "POST", "url": "MedicationRequest"}}]}`)
	op := func(code, extra string) string {
		return `{"operation": {"type": {"code": "` + code + `"}, "encodeRequestUrl": true` + extra + `}}`
	}
	as := func(body string) string { return `{"assert": {"warningOnly": false, ` + body + `}}` }
	write("ops.json", `{"resourceType": "TestScript", "id": "ops", "name": "Ops", "status": "draft",
	  "fixture": [
	    {"id": "order", "autocreate": true, "autodelete": true, "resource": {"reference": "order.json"}},
	    {"id": "order-v2", "resource": {"reference": "order-v2.json"}},
	    {"id": "patch", "resource": {"reference": "patch.json"}},
	    {"id": "tx", "resource": {"reference": "tx.json"}},
	    {"id": "batch", "resource": {"reference": "batch.json"}}],
	  "test": [{"name": "lifecycle", "action": [
	    `+op("update", `, "sourceId": "order-v2", "targetId": "order"`)+`,
	    `+as(`"response": "okay"`)+`,
	    `+as(`"expression": "MedicationRequest.status = 'on-hold' and meta.versionId = '2'"`)+`,
	    `+op("vread", `, "resource": "MedicationRequest", "targetId": "order"`)+`,
	    `+as(`"response": "okay"`)+`,
	    `+as(`"expression": "meta.versionId", "value": "2"`)+`,
	    `+op("history", `, "resource": "MedicationRequest", "targetId": "order"`)+`,
	    `+as(`"expression": "Bundle.type = 'history' and entry.count() = 2"`)+`,
	    `+op("patch", `, "resource": "MedicationRequest", "targetId": "order", "sourceId": "patch", "contentType": "application/json-patch+json"`)+`,
	    `+as(`"response": "okay"`)+`,
	    `+as(`"expression": "status", "value": "completed"`)+`,
	    `+op("transaction", `, "sourceId": "tx"`)+`,
	    `+as(`"response": "okay"`)+`,
	    `+as(`"expression": "entry.response.status", "operator": "contains", "value": "201"`)+`,
	    `+op("batch", `, "sourceId": "batch"`)+`,
	    `+as(`"expression": "Bundle.type = 'batch-response' and entry.count() = 1"`)+`,
	    `+as(`"responseCode": "200,201", "operator": "in"`)+`]}]}`)
	write("setup-fails.json", `{"resourceType": "TestScript", "id": "setup-fails", "name": "SetupFails", "status": "draft",
	  "fixture": [{"id": "order", "resource": {"reference": "order.json"}}],
	  "setup": {"action": [`+op("create", `, "sourceId": "order"`)+`, `+as(`"response": "okay"`)+`]},
	  "test": [{"name": "never", "action": [`+as(`"response": "created"`)+`]}]}`)
	rep := runScripts(t, ts.URL, dir)
	checks := scriptChecks(rep)
	if c := checks["testscript.ops.lifecycle"]; c.Status != kit.Pass {
		t.Errorf("lifecycle: %s: %s", c.Status, c.Reason)
		for _, ex := range c.Exchanges {
			t.Logf("  %s %s → %d %s", ex.Method, ex.URL, ex.Status, ex.ResponseBody)
		}
	}
	if c := checks["testscript.ops.teardown"]; c.Status != kit.Pass {
		t.Errorf("teardown: %s: %s", c.Status, c.Reason)
	}
	if c := checks["testscript.setup-fails.setup"]; c.Status != kit.Fail || c.Level != kit.Shall {
		t.Errorf("setup: %+v", c)
	}
	if c := checks["testscript.setup-fails.never"]; c.Status != kit.Skip {
		t.Errorf("test after a failed setup: %+v", c)
	}
	tr := readReports(t, rep)["setup-fails"]
	if tr.Result != "fail" || tr.Test[0].Action[0].Assert.Result != "skip" || tr.TestScript.Reference != "TestScript/setup-fails" {
		t.Errorf("TestReport %+v", tr)
	}
	if len(rep.CleanupErrors) > 0 {
		t.Errorf("cleanup: %v", rep.CleanupErrors)
	}
	for _, typ := range []string{"MedicationRequest"} {
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
			t.Errorf("%d %s left after the run", n, typ)
		}
	}
}
