package server_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"infusion/conformance"
	"infusion/fhir/fhirtest"
	"infusion/server"
)

func TestLifecycle(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	order := example(t, "valid/medicationrequest-ketamine-crps.json")

	r := ts.do(t, http.MethodPost, "/MedicationRequest", order)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id, _ := r.json(t)["id"].(string)
	if want := ts.URL + "/MedicationRequest/" + id + "/_history/1"; r.header.Get("Location") != want {
		t.Errorf("Location = %q, want %q", r.header.Get("Location"), want)
	}
	if r.header.Get("ETag") != `W/"1"` || r.header.Get("Last-Modified") == "" {
		t.Errorf("ETag %q, Last-Modified %q", r.header.Get("ETag"), r.header.Get("Last-Modified"))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	assertSameResource(t, order, r.body)
	created := r.body

	r = ts.do(t, http.MethodGet, "/MedicationRequest/"+id, "")
	if r.status != http.StatusOK || string(r.body) != string(created) || r.header.Get("ETag") != `W/"1"` {
		t.Fatalf("read: %d %s %s", r.status, r.header.Get("ETag"), r.body)
	}
	lastModified := r.header.Get("Last-Modified")
	for _, h := range []string{`If-None-Match: W/"1"`, `If-None-Match: "1"`, "If-Modified-Since: " + lastModified} {
		if r := ts.do(t, http.MethodGet, "/MedicationRequest/"+id, "", h); r.status != http.StatusNotModified || len(r.body) != 0 {
			t.Errorf("read with %s: %d, want 304", h, r.status)
		}
	}
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	if r := ts.do(t, http.MethodGet, "/MedicationRequest/"+id, "", `If-None-Match: W/"7"`); r.status != http.StatusOK {
		t.Errorf("read with another version's tag: %d, want 200", r.status)
	}
	if r := ts.do(t, http.MethodGet, "/MedicationRequest/"+id, "", "If-Modified-Since: "+past); r.status != http.StatusOK {
		t.Errorf("read modified since an hour ago: %d, want 200", r.status)
	}

	updated := strings.Replace(withID(t, order, id), `"priority":"routine"`, `"priority":"urgent"`, 1)
	r = ts.do(t, http.MethodPut, "/MedicationRequest/"+id, updated, `If-Match: W/"1"`)
	if r.status != http.StatusOK || r.header.Get("ETag") != `W/"2"` || r.header.Get("Location") != "" {
		t.Fatalf("update: %d %s %s", r.status, r.header.Get("ETag"), r.body)
	}
	r = ts.do(t, http.MethodPut, "/MedicationRequest/"+id, updated, `If-Match: W/"1"`)
	if r.status != http.StatusPreconditionFailed {
		t.Errorf("stale If-Match: %d, want 412", r.status)
	}
	if r := ts.do(t, http.MethodGet, "/MedicationRequest/"+id, ""); r.header.Get("ETag") != `W/"2"` {
		t.Errorf("after a refused update the version is %s, want 2", r.header.Get("ETag"))
	}
	if r := ts.do(t, http.MethodGet, "/MedicationRequest/"+id+"/_history/1", ""); r.status != http.StatusOK || string(r.body) != string(created) {
		t.Errorf("vread 1: %d", r.status)
	}

	r = ts.do(t, http.MethodDelete, "/MedicationRequest/"+id, "")
	if r.status != http.StatusOK || r.header.Get("ETag") != `W/"3"` {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := ts.do(t, http.MethodGet, "/MedicationRequest/"+id, ""); r.status != http.StatusGone {
		t.Errorf("read after delete: %d, want 410", r.status)
	}
	if r := ts.do(t, http.MethodGet, "/MedicationRequest/"+id+"/_history/3", ""); r.status != http.StatusGone {
		t.Errorf("vread of the delete: %d, want 410", r.status)
	}
	if r := ts.do(t, http.MethodDelete, "/MedicationRequest/"+id, ""); r.status != http.StatusOK || !strings.Contains(string(r.body), "already deleted") {
		t.Errorf("second delete: %d %s", r.status, r.body)
	}

	h := ts.do(t, http.MethodGet, "/MedicationRequest/"+id+"/_history", "").json(t)
	if h["type"] != "history" {
		t.Errorf("history type = %v", h["type"])
	}
	var methods []string
	for _, e := range h["entry"].([]any) {
		entry := e.(map[string]any)
		methods = append(methods, entry["request"].(map[string]any)["method"].(string))
		if _, hasResource := entry["resource"]; hasResource == (methods[len(methods)-1] == "DELETE") {
			t.Errorf("entry %d: resource present = %v", len(methods), hasResource)
		}
	}
	if strings.Join(methods, ",") != "DELETE,PUT,POST" {
		t.Errorf("history methods = %v, want newest first DELETE,PUT,POST", methods)
	}

	r = ts.do(t, http.MethodPut, "/MedicationRequest/"+id, updated)
	if r.status != http.StatusCreated || r.header.Get("ETag") != `W/"4"` || !strings.HasSuffix(r.header.Get("Location"), "/_history/4") {
		t.Errorf("update of a deleted resource: %d %s %s", r.status, r.header.Get("ETag"), r.header.Get("Location"))
	}
	r = ts.do(t, http.MethodPut, "/MedicationRequest/client-chosen-1", withID(t, order, "client-chosen-1"))
	if r.status != http.StatusCreated || r.header.Get("Location") != ts.URL+"/MedicationRequest/client-chosen-1/_history/1" {
		t.Errorf("create on update: %d %s", r.status, r.header.Get("Location"))
	}
}

// assertSameResource checks that the server returned what was sent, with
// only id and meta.versionId/lastUpdated added.
func assertSameResource(tb testing.TB, sent string, got []byte) {
	tb.Helper()
	var g map[string]json.RawMessage
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Fatal(err)
	}
	var s map[string]json.RawMessage
	if err := json.Unmarshal([]byte(sent), &s); err != nil {
		tb.Fatal(err)
	}
	strip := func(m map[string]json.RawMessage) {
		delete(m, "id")
		var meta map[string]json.RawMessage
		if json.Unmarshal(m["meta"], &meta) == nil {
			delete(meta, "versionId")
			delete(meta, "lastUpdated")
			if len(meta) == 0 {
				delete(m, "meta")
			} else {
				m["meta"], _ = json.Marshal(meta)
			}
		}
	}
	if _, ok := g["id"]; !ok {
		tb.Error("no id in the returned resource")
	}
	strip(g)
	strip(s)
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(g)
	if same, err := fhirtest.EqualJSON(a, b); err != nil || !same {
		tb.Errorf("the returned resource differs from the one sent:\nsent %s\ngot  %s", a, b)
	}
}

func TestPreferOnUpdate(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	obs := example(t, "valid/observation-pain-after.json")
	id := ts.create(t, "Observation", obs)
	if r := ts.do(t, http.MethodPut, "/Observation/"+id, withID(t, obs, id), "Prefer: return=minimal"); r.status != http.StatusOK || len(r.body) != 0 || r.header.Get("ETag") != `W/"2"` {
		t.Errorf("update, return=minimal: %d %q %s", r.status, r.header.Get("ETag"), r.body)
	}
	r := ts.do(t, http.MethodPut, "/Observation/"+id, withID(t, obs, id), "Prefer: return=OperationOutcome")
	if r.status != http.StatusOK || r.json(t)["resourceType"] != "OperationOutcome" {
		t.Errorf("update, return=OperationOutcome: %d %s", r.status, r.body)
	}
	if r := ts.do(t, http.MethodDelete, "/Observation/"+id, "", `If-Match: W/"3"`); r.status != http.StatusOK || r.header.Get("ETag") != `W/"4"` {
		t.Errorf("delete with the current If-Match: %d %s", r.status, r.header.Get("ETag"))
	}
}

func TestPrefer(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	obs := example(t, "valid/observation-pain-before.json")
	tests := []struct {
		prefer   string
		wantType string // resourceType of the body; "" for none
	}{
		{"", "Observation"},
		{"return=representation", "Observation"},
		{"return=minimal", ""},
		{"return=OperationOutcome", "OperationOutcome"},
	}
	for _, tt := range tests {
		t.Run(tt.prefer, func(t *testing.T) {
			var headers []string
			if tt.prefer != "" {
				headers = append(headers, "Prefer: "+tt.prefer)
			}
			r := ts.do(t, http.MethodPost, "/Observation", obs, headers...)
			if r.status != http.StatusCreated || r.header.Get("Location") == "" || r.header.Get("ETag") != `W/"1"` {
				t.Fatalf("create: %d %v", r.status, r.header)
			}
			if tt.wantType == "" {
				if len(r.body) != 0 {
					t.Errorf("want no body, got %s", r.body)
				}
				return
			}
			if got := r.json(t)["resourceType"]; got != tt.wantType {
				t.Errorf("body is a %v, want %s", got, tt.wantType)
			}
		})
	}
}

// TestBadRequests checks that each bad request gets its status and an
// OperationOutcome, and that none of them changes anything.
func TestBadRequests(t *testing.T) {
	ts := newTestServer(t, server.Config{MaxBody: 4096})
	obs := example(t, "valid/observation-heart-rate.json")
	id := ts.create(t, "Observation", obs)
	before := ts.historyCount(t)
	big := `{"resourceType":"Observation","status":"final","code":{"text":"` + strings.Repeat("x", 5000) + `"}}`
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		expression               string // an issue must name it, when set
	}{
		{"malformed JSON", "POST", "/Observation", `{"resourceType": "Observation",`, nil, 400, ""},
		{"trailing garbage", "POST", "/Observation", obs + "}", nil, 400, ""},
		{"duplicate member", "POST", "/Observation", `{"resourceType":"Observation","status":"final","status":"final","code":{"text":"x"}}`, nil, 400, ""},
		{"not an object", "POST", "/Observation", `[1,2]`, nil, 400, ""},
		{"empty body", "POST", "/Observation", "", []string{"Content-Type: application/fhir+json"}, 400, ""},
		{"unknown element", "POST", "/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"foo":1}`, nil, 400, "Observation.foo"},
		{"wrong type", "POST", "/Observation", `{"resourceType":"Observation","status":5,"code":{"text":"x"}}`, nil, 400, "Observation.status"},
		{"other resource type", "POST", "/Observation", `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"ketamine"},"subject":{"reference":"Patient/p"}}`, nil, 400, "resourceType"},
		{"body over the limit", "POST", "/Observation", big, nil, 413, ""},
		{"unsupported type", "GET", "/Patient/1", "", nil, 404, ""},
		{"not a FHIR type", "GET", "/Foo/1", "", nil, 404, ""},
		{"unknown id", "GET", "/Observation/nope", "", nil, 404, ""},
		{"bad id", "GET", "/Observation/bad_id!", "", nil, 400, ""},
		{"unknown version", "GET", "/Observation/" + id + "/_history/9", "", nil, 404, ""},
		{"bad version", "GET", "/Observation/" + id + "/_history/x", "", nil, 400, ""},
		{"wrong method", "POST", "/Observation/" + id, obs, nil, 405, ""},
		{"delete without id or condition", "DELETE", "/Observation", "", nil, 400, ""},
		{"patch that is not a patch", "PATCH", "/Observation/" + id, obs, nil, 400, "resourceType"},
		{"XML wanted", "GET", "/Observation/" + id, "", []string{"Accept: application/fhir+xml"}, 406, ""},
		{"_format xml", "GET", "/Observation/" + id + "?_format=xml", "", nil, 406, ""},
		{"other FHIR version", "GET", "/Observation/" + id, "", []string{"Accept: application/fhir+json; fhirVersion=3.0"}, 406, ""},
		{"body not JSON", "POST", "/Observation", obs, []string{"Content-Type: application/xml"}, 415, ""},
		{"form body", "POST", "/Observation", obs, []string{"Content-Type: application/x-www-form-urlencoded"}, 415, ""},
		{"update without id", "PUT", "/Observation/" + id, obs, nil, 400, "Observation.id"},
		{"update with another id", "PUT", "/Observation/" + id, withID(t, obs, "other"), nil, 400, "Observation.id"},
		{"stale If-Match", "PUT", "/Observation/" + id, withID(t, obs, id), []string{`If-Match: W/"7"`}, 412, ""},
		{"bad If-Match", "PUT", "/Observation/" + id, withID(t, obs, id), []string{`If-Match: yesterday`}, 400, ""},
		{"delete with stale If-Match", "DELETE", "/Observation/" + id, "", []string{`If-Match: W/"7"`}, 412, ""},
		{"bad _count", "GET", "/_history?_count=many", "", nil, 400, ""},
		{"bad _since", "GET", "/_history?_since=yesterday", "", nil, 400, ""},
		{"no such endpoint", "GET", "/Observation/" + id + "/foo/bar/baz", "", nil, 404, ""},
		{"search of an unsupported type", "GET", "/Patient", "", nil, 404, ""},
		{"unknown path", "GET", "/nope", "", nil, 404, ""},
		{"create of an unsupported type", "POST", "/Patient", `{"resourceType":"Patient"}`, nil, 404, ""},
		{"wrong method on metadata", "POST", "/metadata", obs, nil, 405, ""},
		{"history of an unknown id", "GET", "/Observation/nope/_history", "", nil, 404, ""},
		{"decimal in an integer", "POST", "/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":2.5}`, nil, 400, "Observation.valueInteger"},
		{"exponent in a positiveInt", "POST", "/MedicationRequest", `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/p"},"dosageInstruction":[{"timing":{"repeat":{"frequency":1e2}}}]}`, nil, 400, "MedicationRequest.dosageInstruction[0].timing.repeat.frequency"},
		{"zero sessions", "POST", "/MedicationRequest", `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/p"},"dosageInstruction":[{"timing":{"repeat":{"count":0}}}]}`, nil, 400, "MedicationRequest.dosageInstruction[0].timing.repeat.count"},
		{"negative unsignedInt", "POST", "/MedicationRequest", `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/p"},"dispenseRequest":{"numberOfRepeatsAllowed":-1}}`, nil, 400, "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed"},
		{"no such day", "POST", "/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2026-02-30"}`, nil, 400, "Observation.effectiveDateTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			exprs := r.issueExpressions(t)
			if tt.expression != "" && !contains(exprs, tt.expression) {
				t.Errorf("issues name %v, want %s: %s", exprs, tt.expression, r.body)
			}
		})
	}
	if after := ts.historyCount(t); after != before {
		t.Errorf("rejected requests changed the history: %d versions, was %d", after, before)
	}
	if r := ts.do(t, http.MethodGet, "/Observation/"+id, ""); r.header.Get("ETag") != `W/"1"` {
		t.Errorf("the resource changed: %s", r.header.Get("ETag"))
	}
}

// TestChunkedBodyOverLimit sends a body without Content-Length: the limit
// holds while reading.
func TestChunkedBodyOverLimit(t *testing.T) {
	ts := newTestServer(t, server.Config{MaxBody: 1024})
	body := `{"resourceType":"Observation","status":"final","code":{"text":"` + strings.Repeat("x", 2000) + `"}}`
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(body))
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/Observation", pr)
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength > 0 {
		t.Errorf("chunked body over the limit: %d (Content-Length %d)", resp.StatusCode, req.ContentLength)
	}
}

// TestClientMetaReplaced checks that the server's versionId and lastUpdated
// replace the client's, extensions on them included, and other meta stays.
func TestClientMetaReplaced(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	body := `{"resourceType":"Observation","meta":{"versionId":"7","_versionId":{"extension":[{"url":"http://example.org/x","valueString":"y"}]},` +
		`"lastUpdated":"2001-01-01T00:00:00Z","tag":[{"system":"http://example.org/tags","code":"pilot"}]},"status":"final","code":{"text":"x"}}`
	r := ts.do(t, http.MethodPost, "/Observation", body)
	meta := r.json(t)["meta"].(map[string]any)
	if meta["versionId"] != "1" || meta["lastUpdated"] == "2001-01-01T00:00:00Z" || meta["_versionId"] != nil || meta["tag"] == nil {
		t.Errorf("meta = %v", meta)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestContentNegotiation(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	id := ts.create(t, "Observation", example(t, "valid/observation-spo2.json"))
	for _, h := range []string{"Accept: application/json", "Accept: application/fhir+json; fhirVersion=4.0",
		"Accept: text/html,application/xhtml+xml,*/*;q=0.8", "Accept: application/fhir+xml, application/fhir+json;q=0.5"} {
		if r := ts.do(t, http.MethodGet, "/Observation/"+id, "", h); r.status != http.StatusOK {
			t.Errorf("%s: %d", h, r.status)
		}
	}
	for _, f := range []string{"json", "application/json", "application/fhir+json"} {
		if r := ts.do(t, http.MethodGet, "/Observation/"+id+"?_format="+f, "", "Accept: application/xml"); r.status != http.StatusOK {
			t.Errorf("_format=%s overriding Accept: %d", f, r.status)
		}
	}
	r := ts.do(t, http.MethodGet, "/Observation/"+id+"?_pretty=true", "")
	if !strings.Contains(string(r.body), "\n  \"id\": ") {
		t.Errorf("_pretty=true did not indent: %.80s", r.body)
	}
	r = ts.do(t, http.MethodPost, "/Observation", example(t, "valid/observation-spo2.json"), "Content-Type: application/json; charset=utf-8")
	if r.status != http.StatusCreated {
		t.Errorf("application/json body: %d", r.status)
	}
}

func TestHistoryPaging(t *testing.T) {
	ts := newTestServer(t, server.Config{Protocol: server.PolicyOff}) // no DetectedIssues in the history
	for range 5 {
		ts.create(t, "Observation", example(t, "valid/observation-heart-rate.json"))
	}
	ts.create(t, "MedicationRequest", example(t, "valid/medicationrequest-lidocaine-neuropathic.json"))
	var ids []string
	next := "/Observation/_history?_count=2"
	pages := 0
	for next != "" {
		b := ts.do(t, http.MethodGet, next, "").json(t)
		pages++
		next = ""
		for _, l := range b["link"].([]any) {
			if l.(map[string]any)["relation"] == "next" {
				next = strings.TrimPrefix(l.(map[string]any)["url"].(string), ts.URL)
			}
		}
		entries, _ := b["entry"].([]any)
		if len(entries) > 2 {
			t.Fatalf("page %d has %d entries, _count is 2", pages, len(entries))
		}
		for _, e := range entries {
			res := e.(map[string]any)["resource"].(map[string]any)
			if res["resourceType"] != "Observation" {
				t.Errorf("type history holds a %v", res["resourceType"])
			}
			ids = append(ids, res["id"].(string))
		}
	}
	if pages != 3 || len(ids) != 5 {
		t.Errorf("%d pages, %d entries; want 3 and 5", pages, len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] > ids[i-1] { // ids are time-ordered: newest first means descending
			t.Errorf("entries out of order: %v", ids)
		}
	}
	if n := ts.historyCount(t); n != 6 {
		t.Errorf("system history has %d versions, want 6", n)
	}
	// _since a moment between the writes returns exactly the later ones.
	all := ts.do(t, http.MethodGet, "/_history", "").json(t)["entry"].([]any)
	cut := all[2].(map[string]any)["response"].(map[string]any)["lastModified"].(string)
	later := 0
	for _, e := range all {
		if e.(map[string]any)["response"].(map[string]any)["lastModified"].(string) >= cut {
			later++
		}
	}
	b := ts.do(t, http.MethodGet, "/_history?_since="+cut, "").json(t)
	if entries, _ := b["entry"].([]any); len(entries) != later {
		t.Errorf("_since=%s returned %d entries, want %d", cut, len(entries), later)
	}
	future := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	b = ts.do(t, http.MethodGet, "/_history?_since="+future, "").json(t)
	if entries, _ := b["entry"].([]any); len(entries) != 0 {
		t.Errorf("_since the future returned %d entries", len(entries))
	}
	b = ts.do(t, http.MethodGet, "/_history?_count=0", "").json(t)
	if entries, _ := b["entry"].([]any); len(entries) != 0 {
		t.Errorf("_count=0 returned %d entries", len(entries))
	}
}

// TestConcurrentUpdates sends many updates with the same If-Match at once:
// exactly one may succeed.
func TestConcurrentUpdates(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	obs := example(t, "valid/observation-body-weight.json")
	id := ts.create(t, "Observation", obs)
	body := withID(t, obs, id)
	var wg sync.WaitGroup
	statuses := make([]int, 16)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPut, ts.URL+"/Observation/"+id, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/fhir+json")
			req.Header.Set("If-Match", `W/"1"`)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err) // not Fatal: this is not the test's goroutine
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	if counts[http.StatusOK] != 1 || counts[http.StatusPreconditionFailed] != 15 {
		t.Errorf("statuses %v; want one 200 and fifteen 412", counts)
	}
	if r := ts.do(t, http.MethodGet, "/Observation/"+id, ""); r.header.Get("ETag") != `W/"2"` {
		t.Errorf("version after the race: %s, want 2", r.header.Get("ETag"))
	}
}

func TestBaseURL(t *testing.T) {
	ts := newTestServer(t, server.Config{BaseURL: "https://fhir.example.org/r4/"})
	r := ts.do(t, http.MethodPost, "/Observation", example(t, "valid/observation-spo2.json"))
	if !strings.HasPrefix(r.header.Get("Location"), "https://fhir.example.org/r4/Observation/") {
		t.Errorf("Location = %q", r.header.Get("Location"))
	}
	b := ts.do(t, http.MethodGet, "/_history", "").json(t)
	entry := b["entry"].([]any)[0].(map[string]any)
	if !strings.HasPrefix(entry["fullUrl"].(string), "https://fhir.example.org/r4/Observation/") {
		t.Errorf("fullUrl = %v", entry["fullUrl"])
	}
}

func TestHealthz(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	if r := ts.do(t, http.MethodGet, "/healthz", ""); r.status != http.StatusOK {
		t.Errorf("healthz: %d", r.status)
	}
}

// TestModelRows checks that the infusion model follows the current version:
// written with each version, replaced on update, removed on delete.
func TestModelRows(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "infusion.db")
	ts := newTestServer(t, server.Config{DBPath: dbPath})
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRow(query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	order := ts.create(t, "MedicationRequest", example(t, "valid/medicationrequest-ketamine-crps.json"))
	if n := count("SELECT count(*) FROM infusion_orders WHERE id = ? AND drug_class = 'ketamine' AND rate_unit = 'mg/kg/h' AND version = 1", order); n != 1 {
		t.Errorf("order rows: %d", n)
	}
	bp := ts.create(t, "Observation", example(t, "valid/observation-bp-during.json"))
	if n := count("SELECT count(*) FROM assessments WHERE observation_id = ?", bp); n != 3 {
		t.Errorf("blood pressure assessments: %d, want 3", n)
	}
	pain := example(t, "valid/observation-pain-before.json")
	painID := ts.create(t, "Observation", pain)
	changed := strings.Replace(withID(t, pain, painID), `"value":7`, `"value":5`, 1)
	if r := ts.do(t, http.MethodPut, "/Observation/"+painID, changed); r.status != http.StatusOK {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	if n := count("SELECT count(*) FROM assessments WHERE observation_id = ? AND value = 5 AND version = 2", painID); n != 1 {
		t.Errorf("updated pain score rows: %d", n)
	}
	ts.do(t, http.MethodDelete, "/Observation/"+bp, "")
	ts.do(t, http.MethodDelete, "/MedicationRequest/"+order, "")
	if n := count("SELECT count(*) FROM assessments WHERE observation_id = ?", bp); n != 0 {
		t.Errorf("assessments left after delete: %d", n)
	}
	if n := count("SELECT count(*) FROM infusion_orders WHERE id = ?", order) + count("SELECT count(*) FROM order_indications WHERE order_id = ?", order); n != 0 {
		t.Errorf("order rows left after delete: %d", n)
	}
}

// TestCapabilityStatementWalk performs every interaction the
// CapabilityStatement claims and expects each to work.
// searchEveryParam issues one search per search parameter a resource of the
// CapabilityStatement lists, with a value of the parameter's type, and
// returns how many it ran.
func searchEveryParam(t *testing.T, ts *testServer, typ string, res map[string]any) int {
	samples := map[string]string{"token": "x", "reference": "Patient/x", "date": "ge2000", "quantity": "gt0",
		"string": "a", "uri": "http://example.org/x", "number": "1"}
	n := 0
	for _, sp := range asList(res["searchParam"]) {
		sp := sp.(map[string]any)
		name, kind := sp["name"].(string), sp["type"].(string)
		value := samples[kind]
		if kind == "composite" {
			value = "x$x"
			switch {
			case strings.HasSuffix(name, "quantity"):
				value = "x$gt0"
			case strings.HasSuffix(name, "date"):
				value = "x$ge2000"
			}
		}
		if value == "" {
			t.Errorf("%s.%s: no sample for type %s", typ, name, kind)
			continue
		}
		if sp["definition"] == nil {
			t.Errorf("%s.%s has no definition URL", typ, name)
		}
		n++
		if r := ts.do(t, http.MethodGet, "/"+typ+"?"+url.QueryEscape(name)+"="+url.QueryEscape(value), "", "Prefer: handling=strict"); r.status != http.StatusOK {
			t.Errorf("%s?%s=%s: %d %s", typ, name, value, r.status, r.body)
		}
	}
	return n
}

func TestCapabilityStatementWalk(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	cs := ts.do(t, http.MethodGet, "/metadata", "").json(t)
	if cs["fhirVersion"] != "4.0.1" || fmt.Sprint(cs["format"]) != "[json]" {
		t.Errorf("fhirVersion %v, format %v", cs["fhirVersion"], cs["format"])
	}
	examples := map[string]string{
		"MedicationRequest":        "valid/medicationrequest-lidocaine-neuropathic.json",
		"MedicationAdministration": "valid/medicationadministration-ketamine-completed.json",
		"Observation":              "valid/observation-lidocaine-level.json",
	}
	rest := cs["rest"].([]any)[0].(map[string]any)
	walked := 0
	for _, res := range rest["resource"].([]any) {
		res := res.(map[string]any)
		typ := res["type"].(string)
		switch {
		case typ == "DetectedIssue":
			walked += walkReadOnly(t, ts, res)
			continue
		case examples[typ] == "": // a type with operations only
			if len(asList(res["interaction"])) > 0 || len(asList(res["searchParam"])) > 0 || res["versioning"] != nil {
				t.Errorf("%s: claims more than operations: %v", typ, res)
			}
			for _, op := range asList(res["operation"]) {
				walked += walkOperation(t, ts, typ, "pat-crps-1", "", op.(map[string]any))
			}
			continue
		}
		body := example(t, examples[typ])
		if res["versioning"] != "versioned-update" || res["readHistory"] != true || res["updateCreate"] != true {
			t.Errorf("%s: versioning %v readHistory %v updateCreate %v", typ, res["versioning"], res["readHistory"], res["updateCreate"])
		}
		id := ts.create(t, typ, body)
		if res["conditionalCreate"] != true || res["conditionalUpdate"] != true || res["conditionalDelete"] != "single" {
			t.Errorf("%s: conditionalCreate %v conditionalUpdate %v conditionalDelete %v", typ, res["conditionalCreate"], res["conditionalUpdate"], res["conditionalDelete"])
		}
		if len(asList(res["operation"])) == 0 {
			t.Errorf("%s: no operations declared", typ)
		}
		for _, op := range asList(res["operation"]) {
			walked += walkOperation(t, ts, typ, id, body, op.(map[string]any))
		}
		for _, in := range res["interaction"].([]any) {
			code := in.(map[string]any)["code"].(string)
			var r response
			want := http.StatusOK
			switch code {
			case "create":
				r, want = ts.do(t, http.MethodPost, "/"+typ, body), http.StatusCreated
			case "read":
				r = ts.do(t, http.MethodGet, "/"+typ+"/"+id, "")
			case "vread":
				r = ts.do(t, http.MethodGet, "/"+typ+"/"+id+"/_history/1", "")
			case "update":
				r = ts.do(t, http.MethodPut, "/"+typ+"/"+id, withID(t, body, id))
			case "history-instance":
				r = ts.do(t, http.MethodGet, "/"+typ+"/"+id+"/_history", "")
			case "history-type":
				r = ts.do(t, http.MethodGet, "/"+typ+"/_history", "")
			case "delete":
				r = ts.do(t, http.MethodDelete, "/"+typ+"/"+ts.create(t, typ, body), "")
			case "patch":
				r = ts.do(t, http.MethodPatch, "/"+typ+"/"+id, `[{"op":"add","path":"/language","value":"en"}]`,
					"Content-Type: application/json-patch+json")
			case "search-type":
				r = ts.do(t, http.MethodGet, "/"+typ+"?_id="+id, "")
				if n := len(asList(r.json(t)["entry"])); n != 1 {
					t.Errorf("%s search by _id found %d", typ, n)
				}
				walked += searchEveryParam(t, ts, typ, res)
			default:
				t.Errorf("%s: the CapabilityStatement claims %q, which this test does not know", typ, code)
				continue
			}
			walked++
			if r.status != want {
				t.Errorf("%s %s: %d, want %d: %s", typ, code, r.status, want, r.body)
			}
		}
	}
	for _, in := range rest["interaction"].([]any) {
		code := in.(map[string]any)["code"].(string)
		method, body := http.MethodGet, ""
		path := map[string]string{"history-system": "/_history", "search-system": "/?_type=Observation&_lastUpdated=ge2000"}[code]
		if code == "transaction" || code == "batch" {
			method, path = http.MethodPost, "/"
			body = `{"resourceType":"Bundle","type":"` + code + `","entry":[{"request":{"method":"POST","url":"Observation"},"resource":` +
				example(t, examples["Observation"]) + `}]}`
		}
		if path == "" {
			t.Errorf("system interaction %q not walked", code)
			continue
		}
		walked++
		r := ts.do(t, method, path, body)
		if r.status != http.StatusOK {
			t.Errorf("%s: %d %s", code, r.status, r.body)
		}
		if body != "" && r.json(t)["type"] != code+"-response" {
			t.Errorf("%s answered a %v", code, r.json(t)["type"])
		}
	}
	for _, op := range asList(rest["operation"]) {
		walked += walkOperation(t, ts, "", "", "", op.(map[string]any))
	}
	if doc, _ := rest["documentation"].(string); !strings.Contains(doc, "policy warn") {
		t.Errorf("rest.documentation %q does not state the protocol policy", doc)
	}
	if walked < 100 {
		t.Errorf("walked %d interactions; the statement claims too few", walked)
	}
}

// walkOperation performs an operation the CapabilityStatement claims, on
// a type and id when it is one of a type, and reads its definition when it
// is one of this server's: the definition is served, and what the
// operation answers conforms to it.
func walkOperation(t *testing.T, ts *testServer, typ, id, body string, op map[string]any) int {
	t.Helper()
	name, canonical := op["name"].(string), op["definition"].(string)
	var def map[string]any
	if own, ok := strings.CutPrefix(canonical, conformance.OperationBase); ok {
		r := ts.do(t, http.MethodGet, "/OperationDefinition/"+own, "")
		if r.status != http.StatusOK {
			t.Fatalf("%s: the definition %s: %d %s", name, canonical, r.status, r.body)
		}
		if def = r.json(t); def["url"] != canonical || def["code"] != name {
			t.Errorf("%s: definition url %v code %v", name, def["url"], def["code"])
		}
	}
	path := map[string]string{"monitoring": "/" + typ + "/" + id + "/$monitoring", "course": "/" + typ + "/" + id + "/$course",
		"formulary": "/$formulary", "infusion-summary": "/" + typ + "/" + id + "/$infusion-summary",
		"infusion-outcomes": "/$infusion-outcomes?group-by=drug-class,condition,setting,month"}[name]
	var r response
	switch {
	case name == "export":
		// Bulk Data: a kick-off, then its manifest; TestExport checks the files.
		kick := map[string]string{"": "/$export", "Patient": "/Patient/$export"}[typ]
		if want := map[string]string{"": conformance.BulkDataBase + "export", "Patient": conformance.BulkDataBase + "patient-export"}[typ]; kick == "" || canonical != want {
			t.Errorf("%s: export at %q, definition %s", typ, kick, canonical)
			return 0
		}
		ts.awaitExport(t, ts.kickOff(t, kick))
		return 1
	case name == "infusion-tables":
		// A flat table: CSV, not a resource; TestTables checks its rows.
		r = ts.do(t, http.MethodGet, "/$infusion-tables/orders", "")
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.HasPrefix(string(r.body), "order_id,version,patient,") {
			t.Errorf("$infusion-tables/orders: %d %s %.200s", r.status, r.header.Get("Content-Type"), r.body)
		}
		return 1
	case name == "validate":
		r = ts.do(t, http.MethodPost, "/"+typ+"/$validate", body)
		if !strings.Contains(string(r.body), "valid for create") {
			t.Errorf("%s $validate: %s", typ, r.body)
		}
	case path != "":
		r = ts.do(t, http.MethodGet, path, "")
	default:
		t.Errorf("%s: operation %s is not walked", typ, name)
		return 0
	}
	if r.status != http.StatusOK {
		t.Errorf("%s $%s: %d %s", typ, name, r.status, r.body)
	} else if out := r.json(t); def != nil && out["resourceType"] == "Parameters" {
		checkParameters(t, name, def, out)
	} else if name == "formulary" && out["version"] == nil {
		t.Errorf("$formulary: %s", r.body)
	}
	return 1
}

// walkReadOnly walks a server-written type: reads, history and search
// answer; every write is 405 and none is claimed.
func walkReadOnly(t *testing.T, ts *testServer, res map[string]any) int {
	t.Helper()
	typ := res["type"].(string)
	ts.create(t, "MedicationRequest", example(t, "valid/medicationrequest-gabapentin-iv.json"))
	found := asList(ts.do(t, http.MethodGet, "/"+typ, "").json(t)["entry"])
	if len(found) == 0 {
		t.Fatalf("no %s after an IV gabapentin order", typ)
	}
	body := found[0].(map[string]any)["resource"].(map[string]any)
	id := body["id"].(string)
	if res["conditionalCreate"] == true || res["conditionalUpdate"] == true || res["conditionalDelete"] != "not-supported" {
		t.Errorf("%s claims conditional writes", typ)
	}
	walked := 0
	for _, in := range res["interaction"].([]any) {
		code := in.(map[string]any)["code"].(string)
		path := map[string]string{"read": "/" + typ + "/" + id, "vread": "/" + typ + "/" + id + "/_history/1",
			"history-instance": "/" + typ + "/" + id + "/_history", "history-type": "/" + typ + "/_history",
			"search-type": "/" + typ + "?_id=" + id}[code]
		if path == "" {
			t.Errorf("%s: the CapabilityStatement claims %q", typ, code)
			continue
		}
		if code == "search-type" {
			walked += searchEveryParam(t, ts, typ, res)
		}
		walked++
		if r := ts.do(t, http.MethodGet, path, ""); r.status != http.StatusOK {
			t.Errorf("%s %s: %d %s", typ, code, r.status, r.body)
		}
	}
	raw, _ := json.Marshal(body)
	for _, w := range []struct{ method, path string }{{http.MethodPost, "/" + typ}, {http.MethodPut, "/" + typ + "/" + id},
		{http.MethodDelete, "/" + typ + "/" + id}, {http.MethodPatch, "/" + typ + "/" + id}, {http.MethodPut, "/" + typ + "?_id=" + id},
		{http.MethodDelete, "/" + typ + "?_id=" + id}} {
		r := ts.do(t, w.method, w.path, string(raw))
		if r.status != http.StatusMethodNotAllowed || !strings.Contains(string(r.body), "written by this server") {
			t.Errorf("%s %s: %d %s, want 405", w.method, w.path, r.status, r.body)
		}
	}
	return walked
}
