package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"infusion/server/servertest"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noETag removes the ETag header of every response.
type noETag struct{ http.ResponseWriter }

func (w noETag) WriteHeader(code int) {
	w.Header().Del("ETag")
	w.ResponseWriter.WriteHeader(code)
}

func (w noETag) Write(b []byte) (int, error) {
	w.Header().Del("ETag")
	return w.ResponseWriter.Write(b)
}

func TestConformanceCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := servertest.Start(t, nil).URL
	junit, report := filepath.Join(dir, "junit.xml"), filepath.Join(dir, "report.json")
	htmlReport := filepath.Join(dir, "report.html")
	var stdout, stderr bytes.Buffer
	code := conformanceCommand(ctx, []string{"-base", base, "-suite", "rest,errors", "-header", "X-Kit: yes",
		"-timeout", "10s", "-junit", junit, "-json", report, "-html", htmlReport}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d against this server\n%s\n%s", code, &stdout, &stderr)
	}
	if page, err := os.ReadFile(htmlReport); err != nil || !strings.HasPrefix(string(page), "<!DOCTYPE html>") ||
		!strings.Contains(string(page), "<code>rest.create.location</code>") {
		t.Errorf("HTML report: %v\n%.300s", err, page)
	}
	out := stdout.String()
	for _, want := range []string{"PASS SHALL  rest.create.location [Observation]", "  rest ", "  errors ", "OK: every SHALL check passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name string `xml:"name,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil || doc.Tests == 0 || doc.Failures != 0 || len(doc.Suites) != 2 {
		t.Errorf("JUnit report: %v, %+v", err, doc)
	}
	data, err = os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		RunID  string `json:"runId"`
		Checks []struct {
			ID, Status string
		} `json:"checks"`
	}
	if err := json.Unmarshal(data, &j); err != nil || j.RunID == "" || len(j.Checks) != doc.Tests {
		t.Errorf("JSON report: %v, run %q, %d checks", err, j.RunID, len(j.Checks))
	}

	broken := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(noETag{w}, r) })
	}).URL
	stdout.Reset()
	if code := conformanceCommand(ctx, []string{"-base", broken}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d against a server without ETag, want 1\n%s", code, &stdout)
	}
	if !strings.Contains(stdout.String(), "FAIL SHALL  rest.update.etag [Observation]") {
		t.Errorf("the output does not name the failed check:\n%s", &stdout)
	}

	notFHIR := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"hello":"world"}`))
	}))
	defer notFHIR.Close()
	for name, args := range map[string][]string{
		"unreachable":               {"-base", "http://127.0.0.1:1"},
		"not a CapabilityStatement": {"-base", notFHIR.URL},
		"no base":                   {},
		"bad header":                {"-base", base, "-header", "no colon"},
		"unknown suite":             {"-base", base, "-suite", "nope"},
	} {
		stderr.Reset()
		if code := conformanceCommand(ctx, args, &stdout, &stderr); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
	}
	if code := run(ctx, []string{"conformance", "-base", "http://127.0.0.1:1"}, func(string) string { return "" }, &stderr); code != 2 {
		t.Errorf("run conformance against an unreachable base: exit %d, want 2", code)
	}
}

func TestConformanceCommandTestScript(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := servertest.Start(t, nil).URL
	reports, junit := filepath.Join(dir, "reports"), filepath.Join(dir, "junit.xml")
	var stdout, stderr bytes.Buffer
	code := conformanceCommand(ctx, []string{"-base", base, "-testscript", "testdata/testscripts", "-testreport", reports, "-junit", junit}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "testscript.ketamine-order-read.read-order") {
		t.Errorf("the console does not name the script's checks:\n%s", &stdout)
	}
	files, _ := filepath.Glob(filepath.Join(reports, "*.json"))
	if len(files) != 4 {
		t.Errorf("%d TestReports written, want 4", len(files))
	}
	data, err := os.ReadFile(junit)
	if err != nil || !bytes.Contains(data, []byte(`name="testscript"`)) {
		t.Errorf("JUnit has no testscript suite: %v", err)
	}

	// A script with a wrong assert fails the run.
	src, err := os.ReadFile("testdata/testscripts/ketamine-order-read.json")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, bytes.Replace(src, []byte(`"value": "6130"`), []byte(`"value": "9999"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code := conformanceCommand(ctx, []string{"-base", base, "-testscript", bad}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d with a failing assert, want 1\n%s", code, &stdout)
	}

	for _, args := range [][]string{
		{"-base", base, "-testreport", reports},
		{"-base", base, "-testscript", filepath.Join(dir, "missing.json")},
	} {
		if code := conformanceCommand(ctx, args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
