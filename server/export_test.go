package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"infusion/fhir/fhirtest"
	"infusion/mapping/synth"
	"infusion/server"
)

// loadSynth stores the generated courses of patients first..first+n-1
// and returns how many resources it sent.
func (ts *testServer) loadSynth(t testing.TB, first, n int) int {
	t.Helper()
	return ts.loadCohort(t, synth.New(synth.Config{Patients: first + n, Seed: 7}), first, n)
}

// manifest is a completed export's status body.
type manifest struct {
	TransactionTime     string
	Request             string
	RequiresAccessToken *bool
	Output              []exportFile
	Deleted             []exportFile
	Error               []any
}

// exportFile is one output of a manifest.
type exportFile struct {
	Type, URL string
	Count     int
}

// kickOff starts an export and returns its status URL.
func (ts *testServer) kickOff(t *testing.T, path string) string {
	t.Helper()
	r := ts.do(t, http.MethodGet, path, "", "Prefer: respond-async", "Accept: application/fhir+json")
	if r.status != http.StatusAccepted {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	loc := r.header.Get("Content-Location")
	if !strings.HasPrefix(loc, ts.URL+"/$export-status/") {
		t.Fatalf("GET %s: Content-Location %q", path, loc)
	}
	return strings.TrimPrefix(loc, ts.URL)
}

// awaitExport polls a status URL until the export is done and returns its
// manifest; every 202 must carry X-Progress and Retry-After.
func (ts *testServer) awaitExport(t *testing.T, status string) manifest {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := ts.do(t, http.MethodGet, status, "", "Accept: application/json")
		switch r.status {
		case http.StatusAccepted:
			if r.header.Get("X-Progress") == "" || r.header.Get("Retry-After") == "" {
				t.Fatalf("202 without X-Progress or Retry-After: %v", r.header)
			}
			if time.Now().After(deadline) {
				t.Fatalf("export %s still running: %s", status, r.header.Get("X-Progress"))
			}
			time.Sleep(20 * time.Millisecond)
			continue
		case http.StatusOK:
		default:
			t.Fatalf("GET %s: %d %s", status, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("manifest Content-Type %q", ct)
		}
		if r.header.Get("Expires") == "" {
			t.Error("manifest without Expires")
		}
		var m manifest
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatal(err)
		}
		if m.RequiresAccessToken == nil || *m.RequiresAccessToken || m.Error == nil {
			t.Errorf("manifest: requiresAccessToken %v, error %v", m.RequiresAccessToken, m.Error)
		}
		if _, err := time.Parse(time.RFC3339Nano, m.TransactionTime); err != nil {
			t.Errorf("transactionTime %q: %v", m.TransactionTime, err)
		}
		return m
	}
}

// exported reads every file of a manifest: the ids of each type, checking
// that each line is a valid R4 resource of the file's type, and that the
// manifest's counts are the lines.
func (ts *testServer) exported(t *testing.T, m manifest) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, o := range m.Output {
		if !strings.HasPrefix(o.URL, ts.URL+"/$export-file/") {
			t.Fatalf("file URL %s", o.URL)
		}
		r := ts.do(t, http.MethodGet, strings.TrimPrefix(o.URL, ts.URL), "", "Accept: application/fhir+ndjson")
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/fhir+ndjson" {
			t.Fatalf("GET %s: %d %s", o.URL, r.status, r.header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(bytes.NewReader(r.body))
		sc.Buffer(nil, 1<<20)
		lines := 0
		for sc.Scan() {
			lines++
			fhirtest.CheckResource(t, sc.Bytes())
			var res struct{ ResourceType, ID string }
			if err := json.Unmarshal(sc.Bytes(), &res); err != nil || res.ResourceType != o.Type {
				t.Fatalf("%s: line %d is a %s: %v", o.URL, lines, res.ResourceType, err)
			}
			out[o.Type] = append(out[o.Type], res.ID)
		}
		if lines != o.Count {
			t.Errorf("%s: %d lines, manifest count %d", o.URL, lines, o.Count)
		}
	}
	for typ, ids := range out {
		slices.Sort(ids)
		if len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Errorf("%s: a resource is exported twice", typ)
		}
		out[typ] = ids
	}
	return out
}

// searchedIDs returns the ids a search on a type finds, every page.
func (ts *testServer) searchedIDs(t *testing.T, typ, query string) []string {
	t.Helper()
	var ids []string
	path := "/" + typ + "?_count=1000&_elements=id&" + query
	for path != "" {
		b := ts.do(t, http.MethodGet, path, "").json(t)
		for _, e := range asList(b["entry"]) {
			ids = append(ids, e.(map[string]any)["resource"].(map[string]any)["id"].(string))
		}
		path = ""
		for _, l := range asList(b["link"]) {
			if l := l.(map[string]any); l["relation"] == "next" {
				path = strings.TrimPrefix(l["url"].(string), ts.URL)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

func TestExport(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	ts.loadSynth(t, 0, 4)
	ts.create(t, "MedicationRequest", example(t, "valid/medicationrequest-gabapentin-iv.json")) // raises a finding
	// An observation about no patient: in the system export, not the Patient one.
	orphan := ts.create(t, "Observation", `{"resourceType":"Observation","status":"final",
		"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":72,"unit":"/min"}}`)
	deleted := ts.create(t, "Observation", example(t, "valid/observation-heart-rate.json"))
	ts.do(t, http.MethodDelete, "/Observation/"+deleted, "")
	types := []string{"MedicationRequest", "MedicationAdministration", "Observation", "DetectedIssue"}

	all := ts.exported(t, ts.awaitExport(t, ts.kickOff(t, "/$export")))
	for _, typ := range types {
		if want := ts.searchedIDs(t, typ, ""); !slices.Equal(all[typ], want) {
			t.Errorf("$export %s: %d resources, search finds %d", typ, len(all[typ]), len(want))
		}
	}
	if len(all["DetectedIssue"]) == 0 || slices.Contains(all["Observation"], deleted) || !slices.Contains(all["Observation"], orphan) {
		t.Errorf("$export: %d findings; deleted exported %v; orphan exported %v", len(all["DetectedIssue"]),
			slices.Contains(all["Observation"], deleted), slices.Contains(all["Observation"], orphan))
	}

	patients := ts.exported(t, ts.awaitExport(t, ts.kickOff(t, "/Patient/$export?_outputFormat=ndjson")))
	for _, typ := range types {
		if want := slices.DeleteFunc(slices.Clone(all[typ]), func(id string) bool { return id == orphan }); !slices.Equal(patients[typ], want) {
			t.Errorf("Patient/$export %s: %d resources, want %d", typ, len(patients[typ]), len(want))
		}
	}

	m := ts.awaitExport(t, ts.kickOff(t, "/$export?_type=Observation,MedicationAdministration&_outputFormat=application/fhir%2Bndjson"))
	if m.Request != ts.URL+"/$export?_type=Observation,MedicationAdministration&_outputFormat=application/fhir%2Bndjson" {
		t.Errorf("manifest request %q", m.Request)
	}
	var got []string
	for _, o := range m.Output {
		got = append(got, o.Type)
	}
	if !slices.Equal(got, []string{"Observation", "MedicationAdministration"}) {
		t.Errorf("_type: files of %v", got)
	}

	// _since: what changed after an export's transactionTime, and a
	// transaction Bundle for each resource deleted since.
	since := m.TransactionTime
	later := ts.create(t, "Observation", example(t, "valid/observation-pain-after.json"))
	gone := all["MedicationAdministration"][0]
	ts.do(t, http.MethodDelete, "/MedicationAdministration/"+gone, "")
	m = ts.awaitExport(t, ts.kickOff(t, "/$export?_since="+url.QueryEscape(since)))
	bySince := ts.exported(t, m)
	if !slices.Contains(bySince["Observation"], later) {
		t.Errorf("_since %s: %s not exported", since, later)
	}
	for _, typ := range types {
		if want := ts.searchedIDs(t, typ, "_lastUpdated=gt"+url.QueryEscape(since)); !slices.Equal(bySince[typ], want) {
			t.Errorf("_since %s: %s %d resources, search finds %d", since, typ, len(bySince[typ]), len(want))
		}
	}
	if len(m.Deleted) != 1 || m.Deleted[0].Type != "Bundle" || m.Deleted[0].Count != 1 {
		t.Fatalf("_since: deleted %+v", m.Deleted)
	}
	r := ts.do(t, http.MethodGet, strings.TrimPrefix(m.Deleted[0].URL, ts.URL), "")
	fhirtest.CheckResource(t, bytes.TrimSpace(r.body))
	if !strings.Contains(string(r.body), `"type":"transaction"`) || !strings.Contains(string(r.body), `{"method":"DELETE","url":"MedicationAdministration/`+gone+`"}`) {
		t.Errorf("deleted file: %s", r.body)
	}
	if m := ts.awaitExport(t, ts.kickOff(t, "/$export")); m.Deleted != nil {
		t.Errorf("deleted without _since: %+v", m.Deleted)
	}

	// _typeFilter: searches, ORed for one type, through the search engine.
	filters := []string{"MedicationAdministration?status=stopped,completed&subject=Patient/pat-000001",
		"Observation?code=http://loinc.org|72514-3", "Observation?_id=" + orphan}
	filtered := ts.exported(t, ts.awaitExport(t, ts.kickOff(t,
		"/$export?_type=MedicationAdministration,Observation&_typeFilter="+url.QueryEscape(strings.Join(filters, ",")))))
	wantAdmin := ts.searchedIDs(t, "MedicationAdministration", "status=stopped,completed&subject=Patient/pat-000001")
	wantObs := append(ts.searchedIDs(t, "Observation", "code=http://loinc.org|72514-3"), orphan)
	slices.Sort(wantObs)
	if len(wantAdmin) == 0 || !slices.Equal(filtered["MedicationAdministration"], wantAdmin) || !slices.Equal(filtered["Observation"], wantObs) {
		t.Errorf("_typeFilter: %d administrations (want %d), %d observations (want %d)",
			len(filtered["MedicationAdministration"]), len(wantAdmin), len(filtered["Observation"]), len(wantObs))
	}

	// Nothing matches: 200 with no files.
	if m := ts.awaitExport(t, ts.kickOff(t, "/$export?_typeFilter="+url.QueryEscape("Observation?code=none"))); len(m.Output) != 3 ||
		slices.ContainsFunc(m.Output, func(o exportFile) bool { return o.Type == "Observation" }) {
		t.Errorf("Observation filtered to nothing: files %v", m.Output)
	}
	if m := ts.awaitExport(t, ts.kickOff(t, "/$export?_type=Observation&_since=2999-01-01T00:00:00Z")); len(m.Output) != 0 {
		t.Errorf("_since in the future: %d files", len(m.Output))
	}
}

func TestExportErrors(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	for _, tc := range []struct {
		name, path string
		headers    []string
		status     int
		want       string // in the OperationOutcome
	}{
		{"no Prefer", "/$export", nil, http.StatusBadRequest, "Prefer: respond-async"},
		{"Prefer without respond-async", "/$export", []string{"Prefer: return=minimal"}, http.StatusBadRequest, "respond-async"},
		{"unknown _type", "/$export?_type=Observation,Patient", nil, http.StatusBadRequest, "_type Patient"},
		{"unknown _type of a Patient export", "/Patient/$export?_type=Condition", nil, http.StatusBadRequest, "_type Condition"},
		{"bad _since", "/$export?_since=yesterday", nil, http.StatusBadRequest, "_since"},
		{"_since a date only", "/$export?_since=2026-01-01", nil, http.StatusBadRequest, "FHIR instant"},
		{"bad _outputFormat", "/$export?_outputFormat=text/csv", nil, http.StatusBadRequest, "_outputFormat text/csv"},
		{"unsupported parameter", "/$export?patient=Patient/1", nil, http.StatusBadRequest, "patient is not a kick-off parameter"},
		{"_typeFilter on no type", "/$export?_typeFilter=status%3Dactive", nil, http.StatusBadRequest, "_typeFilter"},
		{"_typeFilter on a type not exported", "/$export?_type=Observation&_typeFilter=MedicationRequest%3Fstatus%3Dactive", nil,
			http.StatusBadRequest, "not a search on one of the exported types"},
		{"_typeFilter with an unknown parameter", "/$export?_typeFilter=Observation%3Fcolour%3Dred", nil, http.StatusBadRequest, "colour"},
		{"_typeFilter with a bad value", "/$export?_typeFilter=Observation%3Fdate%3Dsoon", nil, http.StatusBadRequest, "date"},
		{"_typeFilter the store cannot run", "/$export?_typeFilter=Observation%3F_id:missing%3Dtrue", nil, http.StatusBadRequest, "_typeFilter on Observation"},
		{"_typeFilter with _include", "/$export?_typeFilter=Observation%3F_include%3DObservation:subject", nil, http.StatusBadRequest, "_include shapes a result"},
		{"unknown status", "/$export-status/no-such-job", nil, http.StatusNotFound, "not known"},
		{"unknown file", "/$export-file/no-such-job/Observation.ndjson", nil, http.StatusNotFound, "not known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := tc.headers
			if headers == nil {
				headers = []string{"Prefer: respond-async"}
				if tc.name == "no Prefer" {
					headers = nil
				}
			}
			r := ts.do(t, http.MethodGet, tc.path, "", headers...)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
				t.Errorf("%d %s, want %d with %q", r.status, r.body, tc.status, tc.want)
			}
			if !strings.Contains(string(r.body), `"OperationOutcome"`) {
				t.Errorf("not an OperationOutcome: %s", r.body)
			}
		})
	}
	// An unsupported parameter is ignored under Prefer: handling=lenient.
	if r := ts.do(t, http.MethodGet, "/$export?includeAssociatedData=LatestProvenanceResources", "",
		"Prefer: respond-async, handling=lenient"); r.status != http.StatusAccepted {
		t.Errorf("lenient: %d %s", r.status, r.body)
	}
	if r := ts.do(t, http.MethodDelete, "/$export-status/no-such-job", ""); r.status != http.StatusNotFound {
		t.Errorf("DELETE unknown job: %d %s", r.status, r.body)
	}
}

func TestExportCancel(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, server.Config{DBPath: filepath.Join(dir, "infusion.db"), ExportDir: filepath.Join(dir, "exports")})
	ts.loadSynth(t, 0, 2)
	status := ts.kickOff(t, "/$export")
	if r := ts.do(t, http.MethodDelete, status, ""); r.status != http.StatusAccepted {
		t.Fatalf("DELETE %s: %d %s", status, r.status, r.body)
	}
	if r := ts.do(t, http.MethodGet, status, ""); r.status != http.StatusNotFound {
		t.Errorf("after DELETE: %d %s", r.status, r.body)
	}
	if r := ts.do(t, http.MethodDelete, status, ""); r.status != http.StatusNotFound {
		t.Errorf("second DELETE: %d %s", r.status, r.body)
	}
	// A completed export: its files go with it.
	status = ts.kickOff(t, "/$export")
	m := ts.awaitExport(t, status)
	ts.do(t, http.MethodDelete, status, "")
	if r := ts.do(t, http.MethodGet, strings.TrimPrefix(m.Output[0].URL, ts.URL), ""); r.status != http.StatusNotFound {
		t.Errorf("a file after DELETE: %d", r.status)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "exports")); len(entries) != 0 {
		t.Errorf("files left after DELETE: %v", entries)
	}
}

// TestExportRestart stops the server right after a kick-off: the next
// server on the same database finishes the job, with every resource.
func TestExportRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Config{DBPath: filepath.Join(dir, "infusion.db")}
	first, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: httptest.NewServer(first.Handler()), app: first}
	sent := ts.loadSynth(t, 0, 3)
	status := ts.kickOff(t, "/$export?_type=Observation,MedicationRequest,MedicationAdministration")
	ts.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := newTestServer(t, cfg)
	m := second.awaitExport(t, status)
	total := 0
	for _, ids := range second.exported(t, m) {
		total += len(ids)
	}
	if total != sent {
		t.Errorf("after a restart: %d resources exported, %d stored", total, sent)
	}
}
