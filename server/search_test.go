package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"infusion/server"
)

// exampleIDs are the ids the examples refer to each other by.
var exampleIDs = map[string]string{
	"medicationrequest-ketamine-crps.json":                  "ketamine-order-1",
	"medicationrequest-lidocaine-neuropathic.json":          "lidocaine-order-1",
	"medicationadministration-ketamine-completed.json":      "ketamine-admin-1",
	"medicationadministration-ketamine-stopped-nausea.json": "ketamine-admin-2",
	"medicationadministration-lidocaine-home.json":          "lidocaine-admin-1",
}

// loadExamples stores every valid example under a known id: the one other
// examples refer to it by, else its file name without the type prefix.
func loadExamples(t *testing.T, ts *testServer) {
	t.Helper()
	files, _ := filepath.Glob("../testdata/resources/valid/*.json")
	for _, f := range files {
		name := filepath.Base(f)
		body := example(t, "valid/"+name)
		var head struct{ ResourceType string }
		json.Unmarshal([]byte(body), &head)
		id, ok := exampleIDs[name]
		if !ok {
			_, id, _ = strings.Cut(strings.TrimSuffix(name, ".json"), "-")
		}
		if r := ts.do(t, http.MethodPut, "/"+head.ResourceType+"/"+id, withID(t, body, id)); r.status != http.StatusCreated {
			t.Fatalf("loading %s: %d %s", name, r.status, r.body)
		}
	}
}

// searchIDs runs a search and returns the ids of its match entries (sorted)
// and of its include entries.
func (ts *testServer) searchIDs(t *testing.T, query string, headers ...string) (matches, includes []string, bundle map[string]any) {
	t.Helper()
	r := ts.do(t, http.MethodGet, query, "", headers...)
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", query, r.status, r.body)
	}
	bundle = r.json(t)
	for _, e := range asList(bundle["entry"]) {
		entry := e.(map[string]any)
		res := entry["resource"].(map[string]any)
		id := res["resourceType"].(string) + "/" + res["id"].(string)
		if entry["search"].(map[string]any)["mode"] == "include" {
			includes = append(includes, id)
		} else {
			matches = append(matches, id)
		}
	}
	sort.Strings(matches)
	sort.Strings(includes)
	return matches, includes, bundle
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestSearch(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	loadExamples(t, ts)
	tests := []struct {
		query string
		want  []string // type/id of the matches, any order
	}{
		// token
		{"/MedicationRequest?status=active&intent=order&code=6130", []string{"MedicationRequest/ketamine-order-1"}},
		{"/MedicationRequest?code=http://www.nlm.nih.gov/research/umls/rxnorm|6387", []string{"MedicationRequest/lidocaine-order-1"}},
		{"/MedicationRequest?code=http://snomed.info/sct|6387", nil},
		{"/MedicationRequest?code=6130,6387", []string{"MedicationRequest/ketamine-order-1", "MedicationRequest/lidocaine-order-1"}},
		{"/MedicationRequest?status=http://hl7.org/fhir/CodeSystem/medicationrequest-status|active&code=25480", []string{"MedicationRequest/gabapentin-iv"}},
		{"/MedicationRequest?identifier=http://example.org/fhir/sid/infusion-order|KET-2024-0001", []string{"MedicationRequest/ketamine-order-1"}},
		{"/MedicationRequest?identifier=http://example.org/fhir/sid/infusion-order|", []string{"MedicationRequest/ketamine-order-1", "MedicationRequest/lidocaine-order-1", "MedicationRequest/myers-home"}},
		{"/MedicationAdministration?status:not=completed", []string{"MedicationAdministration/ketamine-admin-2", "MedicationAdministration/not-done"}},
		{"/Observation?code:text=pain&_count=50", []string{"Observation/pain-after", "Observation/pain-before"}},
		{"/MedicationRequest?category=community", []string{"MedicationRequest/myers-home", "MedicationRequest/oxycodone-oral"}},
		{"/MedicationAdministration?reason-not-given=422587007", []string{"MedicationAdministration/ketamine-admin-2"}},
		{"/MedicationRequest?identifier:missing=true", []string{"MedicationRequest/gabapentin-iv"}},
		// reference
		{"/Observation?patient=pat-np-1", []string{"Observation/dizziness", "Observation/lidocaine-level"}},
		{"/Observation?subject=Patient/pat-np-1", []string{"Observation/dizziness", "Observation/lidocaine-level"}},
		{"/Observation?subject:Patient=pat-np-1", []string{"Observation/dizziness", "Observation/lidocaine-level"}},
		{"/Observation?part-of=MedicationAdministration/ketamine-admin-2", []string{"Observation/nausea"}},
		{"/Observation?based-on=MedicationRequest/lidocaine-order-1", []string{"Observation/lidocaine-level"}},
		{"/MedicationAdministration?request=MedicationRequest/lidocaine-order-1", []string{"MedicationAdministration/lidocaine-admin-1"}},
		{"/MedicationRequest?encounter:missing=false", []string{"MedicationRequest/ketamine-order-1"}},
		{"/MedicationRequest?medication=http://www.nlm.nih.gov/research/umls/rxnorm|6130", []string{"MedicationRequest/ketamine-order-1"}},
		// date with precision and prefixes
		{"/MedicationRequest?authoredon=2024-03", []string{"MedicationRequest/ketamine-order-1"}},
		{"/MedicationRequest?authoredon=ge2024-04-01&authoredon=lt2024-05", []string{"MedicationRequest/lidocaine-order-1"}},
		{"/MedicationRequest?authoredon=lt2024-03-01", []string{"MedicationRequest/oxycodone-oral"}},
		{"/MedicationAdministration?effective-time=2024-03-11", []string{"MedicationAdministration/ketamine-admin-1"}},
		{"/MedicationAdministration?effective-time=sa2024-03-12", []string{"MedicationAdministration/lidocaine-admin-1", "MedicationAdministration/not-done"}},
		{"/MedicationAdministration?effective-time=eb2024-03-12", []string{"MedicationAdministration/ketamine-admin-1"}},
		{"/Observation?date=2024-03-11T10:00:00%2B01:00&code=8867-4", []string{"Observation/heart-rate"}},
		// quantity and composite
		{"/Observation?value-quantity=gt70", []string{"Observation/body-weight", "Observation/heart-rate", "Observation/spo2"}},
		{"/Observation?value-quantity=72.5|http://unitsofmeasure.org|kg", []string{"Observation/body-weight"}},
		{"/Observation?value-quantity=72.5||kg", []string{"Observation/body-weight"}},
		{"/Observation?value-quantity=72||kg", nil},
		{"/Observation?value-quantity=le3|http://unitsofmeasure.org|{score}", []string{"Observation/pain-after"}},
		{"/Observation?code-value-quantity=72514-3$gt5", []string{"Observation/pain-before"}},
		{"/Observation?component-code-value-quantity=http://loinc.org|8480-6$gt100", []string{"Observation/bp-during"}},
		{"/Observation?component-code-value-quantity=http://loinc.org|8462-4$gt200", nil},
		{"/Observation?combo-code=8480-6", []string{"Observation/bp-during"}},
		// chains and reverse chains
		{"/MedicationAdministration?request.medication=http://www.nlm.nih.gov/research/umls/rxnorm|6130", []string{"MedicationAdministration/ketamine-admin-1", "MedicationAdministration/ketamine-admin-2", "MedicationAdministration/not-done"}},
		{"/MedicationAdministration?request.code=6387", []string{"MedicationAdministration/lidocaine-admin-1"}},
		{"/Observation?part-of:MedicationAdministration.request.status=active&code=72514-3", []string{"Observation/pain-after", "Observation/pain-before"}},
		{"/Observation?part-of.status=stopped", []string{"Observation/nausea"}},
		{"/MedicationRequest?_has:MedicationAdministration:request:status=completed", []string{"MedicationRequest/ketamine-order-1", "MedicationRequest/lidocaine-order-1"}},
		{"/MedicationRequest?_has:MedicationAdministration:request:status=stopped", []string{"MedicationRequest/ketamine-order-1"}},
		{"/MedicationRequest?_has:MedicationAdministration:request:_has:Observation:part-of:code=422587007", []string{"MedicationRequest/ketamine-order-1"}},
		// common parameters
		{"/Observation?_id=nausea,headache", []string{"Observation/headache", "Observation/nausea"}},
		{"/Observation?_id=nausea&code=25064002", nil},
		{"/Observation?_lastUpdated=gt2000-01-01&code=3714-3", []string{"Observation/lidocaine-level"}},
		{"/Observation?_lastUpdated=lt2000-01-01", nil},
		// compartment and system search
		{"/Patient/pat-np-1/MedicationAdministration", []string{"MedicationAdministration/lidocaine-admin-1"}},
		{"/Patient/pat-fm-1/MedicationRequest", []string{"MedicationRequest/gabapentin-iv", "MedicationRequest/myers-home"}},
		{"/?_type=MedicationRequest,MedicationAdministration&_id=lidocaine-order-1,lidocaine-admin-1", []string{"MedicationAdministration/lidocaine-admin-1", "MedicationRequest/lidocaine-order-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, _, bundle := ts.searchIDs(t, tt.query)
			want := slices.Clone(tt.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("matches %v, want %v", got, want)
			}
			if bundle["type"] != "searchset" {
				t.Errorf("type %v", bundle["type"])
			}
			if total, ok := bundle["total"].(float64); !ok || int(total) != len(want) {
				t.Errorf("total %v, want %d", bundle["total"], len(want))
			}
		})
	}
}

func TestSearchIncludes(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	loadExamples(t, ts)
	m, inc, _ := ts.searchIDs(t, "/MedicationAdministration?_id=ketamine-admin-2&_include=MedicationAdministration:request")
	if !slices.Equal(m, []string{"MedicationAdministration/ketamine-admin-2"}) || !slices.Equal(inc, []string{"MedicationRequest/ketamine-order-1"}) {
		t.Errorf("_include: matches %v includes %v", m, inc)
	}
	m, inc, _ = ts.searchIDs(t, "/MedicationRequest?_id=lidocaine-order-1&_revinclude=MedicationAdministration:request")
	if !slices.Equal(m, []string{"MedicationRequest/lidocaine-order-1"}) || !slices.Equal(inc, []string{"MedicationAdministration/lidocaine-admin-1"}) {
		t.Errorf("_revinclude: matches %v includes %v", m, inc)
	}
	_, inc, _ = ts.searchIDs(t, "/MedicationRequest?_id=lidocaine-order-1&_revinclude=MedicationAdministration:request&_revinclude:iterate=Observation:part-of")
	if !slices.Equal(inc, []string{"MedicationAdministration/lidocaine-admin-1", "Observation/dizziness", "Observation/lidocaine-level"}) {
		t.Errorf("_revinclude:iterate: includes %v", inc)
	}
	_, inc, _ = ts.searchIDs(t, "/Observation?_id=nausea&_include=Observation:*")
	if !slices.Equal(inc, []string{"MedicationAdministration/ketamine-admin-2"}) {
		t.Errorf("_include=Observation:*: includes %v", inc)
	}
}

func TestSearchPagingAndSort(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	loadExamples(t, ts)
	// Pages of 3 through the 10 Observations, sorted by date then id.
	var seen []string
	next := "/Observation?_sort=date,_id&_count=3"
	var last time.Time
	pages := 0
	for next != "" {
		m, _, bundle := ts.searchIDs(t, next)
		pages++
		if len(m) > 3 {
			t.Fatalf("page of %d", len(m))
		}
		entries := asList(bundle["entry"])
		for _, e := range entries {
			res := e.(map[string]any)["resource"].(map[string]any)
			seen = append(seen, res["id"].(string))
			d, err := time.Parse(time.RFC3339, res["effectiveDateTime"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if d.Before(last) {
				t.Errorf("dates out of order: %s after %s", d, last)
			}
			last = d
		}
		next = linkURL(bundle, "next", ts.URL)
		if prev := linkURL(bundle, "previous", ts.URL); pages > 1 && prev == "" {
			t.Errorf("page %d has no previous link", pages)
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 10 || pages != 4 {
		t.Errorf("%d resources over %d pages, want 10 over 4", len(seen), pages)
	}
	// The previous link of page 2 returns page 1.
	_, _, p1 := ts.searchIDs(t, "/Observation?_sort=-date&_count=4")
	_, _, p2 := ts.searchIDs(t, linkURL(p1, "next", ts.URL))
	_, _, back := ts.searchIDs(t, linkURL(p2, "previous", ts.URL))
	if ids(p1) != ids(back) {
		t.Errorf("previous of page 2 is %s, want page 1 %s", ids(back), ids(p1))
	}
	// A page stays correct when a resource is added before it.
	ts.create(t, "Observation", example(t, "valid/observation-spo2.json"))
	_, _, again := ts.searchIDs(t, linkURL(p1, "next", ts.URL))
	if ids(again) != ids(p2) {
		t.Errorf("page 2 changed after an insert: %s, was %s", ids(again), ids(p2))
	}
	// Descending by a quantity: the heaviest first.
	// Descending by a quantity: the two SpO2 readings (97) come first.
	_, _, b := ts.searchIDs(t, "/Observation?value-quantity=ge0&_sort=-value-quantity&_count=3")
	var values []float64
	for _, e := range asList(b["entry"]) {
		q := e.(map[string]any)["resource"].(map[string]any)["valueQuantity"].(map[string]any)
		values = append(values, q["value"].(float64))
	}
	if !slices.Equal(values, []float64{97, 97, 88}) {
		t.Errorf("-value-quantity: values %v, want 97, 97, 88", values)
	}
	if linkURL(b, "first", ts.URL) == "" {
		t.Error("no first link on the first page")
	}
}

// TestSearchPagingEdges pages through open-ended periods, missing sort
// values and ties, in both directions.
func TestSearchPagingEdges(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	admin := example(t, "valid/medicationadministration-ketamine-completed.json")
	// Four in progress (no end), two with the same start, one without a
	// period at all (a dateTime).
	starts := map[string]string{"a1": "2024-01-01T09:00:00Z", "a2": "2024-01-02T09:00:00Z", "a3": "2024-01-02T09:00:00Z", "a4": "2024-01-03T09:00:00Z"}
	for id, start := range starts {
		body := strings.Replace(withID(t, admin, id), `"status":"completed"`, `"status":"in-progress"`, 1)
		body = strings.Replace(body, `"end":"2024-03-11T13:00:00+01:00"`, ``, 1)
		body = strings.Replace(body, `"start":"2024-03-11T09:00:00+01:00",`, `"start":"`+start+`"`, 1)
		if r := ts.do(t, http.MethodPut, "/MedicationAdministration/"+id, body); r.status != http.StatusCreated {
			t.Fatalf("%s: %d %s", id, r.status, r.body)
		}
	}
	for _, order := range []string{"-effective-time", "effective-time", "-request", "status,-_id"} {
		var seen []string
		next := "/MedicationAdministration?_sort=" + order + "&_count=1"
		for i := 0; next != "" && i < 10; i++ {
			m, _, b := ts.searchIDs(t, next)
			seen = append(seen, m...)
			next = linkURL(b, "next", ts.URL)
		}
		slices.Sort(seen)
		if strings.Join(seen, ",") != "MedicationAdministration/a1,MedicationAdministration/a2,MedicationAdministration/a3,MedicationAdministration/a4" {
			t.Errorf("_sort=%s paged through %v", order, seen)
		}
	}
	for _, page := range []string{"garbage", "eyJyIjoxfQ", "eyJrIjpbe31dLCJyIjoxfQ"} { // {"r":1}, {"k":[{}],"r":1}
		if r := ts.do(t, http.MethodGet, "/MedicationAdministration?_sort=effective-time&_page="+page, ""); r.status != http.StatusBadRequest {
			t.Errorf("_page=%s: %d, want 400", page, r.status)
		}
	}
}

// TestSearchScope covers what must not match: parameters of one type in a
// search across types, references to another server, chains to deleted
// resources, and elements _summary leaves out of included resources.
func TestSearchScope(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	loadExamples(t, ts)
	if m, _, _ := ts.searchIDs(t, "/?_type=MedicationRequest,Observation&code=72514-3&_count=100"); len(m) != 15 {
		t.Errorf("a type's parameter in a system search was not ignored: %d matches", len(m))
	}
	if r := ts.do(t, http.MethodGet, "/?_type=MedicationRequest,Observation&code=72514-3", "", "Prefer: handling=strict"); r.status != http.StatusBadRequest {
		t.Errorf("strict: %d", r.status)
	}
	elsewhere := strings.Replace(withID(t, example(t, "valid/observation-heart-rate.json"), "remote-1"),
		`"reference":"Patient/pat-crps-1"`, `"reference":"http://other.example.org/fhir/Patient/pat-crps-1"`, 1)
	ts.do(t, http.MethodPut, "/Observation/remote-1", elsewhere)
	if m, _, _ := ts.searchIDs(t, "/Observation?subject=Patient/pat-crps-1&code=8867-4"); !slices.Equal(m, []string{"Observation/heart-rate"}) {
		t.Errorf("a reference to another server matched a local one: %v", m)
	}
	if m, _, _ := ts.searchIDs(t, "/Observation?subject=http://other.example.org/fhir/Patient/pat-crps-1"); !slices.Equal(m, []string{"Observation/remote-1"}) {
		t.Errorf("search by the absolute reference: %v", m)
	}
	ts.do(t, http.MethodDelete, "/MedicationRequest/lidocaine-order-1", "")
	for _, q := range []string{"/MedicationAdministration?request._id=lidocaine-order-1", "/MedicationAdministration?request.status=active&patient=pat-np-1"} {
		if m, _, _ := ts.searchIDs(t, q); len(m) != 0 {
			t.Errorf("%s: a chain through a deleted resource matched %v", q, m)
		}
	}
	_, _, b := ts.searchIDs(t, "/MedicationAdministration?_id=ketamine-admin-2&_include=MedicationAdministration:request&_summary=true")
	for _, e := range asList(b["entry"]) {
		res := e.(map[string]any)["resource"].(map[string]any)
		if res["text"] != nil || res["statusReason"] != nil || res["dosageInstruction"] != nil {
			t.Errorf("_summary=true kept %v in %s", keysOf(res), res["resourceType"])
		}
	}
}

func ids(bundle map[string]any) string {
	var out []string
	for _, e := range asList(bundle["entry"]) {
		out = append(out, e.(map[string]any)["resource"].(map[string]any)["id"].(string))
	}
	return strings.Join(out, ",")
}

func linkURL(bundle map[string]any, relation, base string) string {
	for _, l := range asList(bundle["link"]) {
		if l.(map[string]any)["relation"] == relation {
			return strings.TrimPrefix(l.(map[string]any)["url"].(string), base)
		}
	}
	return ""
}

func TestSearchResultParameters(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	loadExamples(t, ts)
	_, _, b := ts.searchIDs(t, "/Observation?code=72514-3&_summary=count")
	if b["total"] != 2.0 || b["entry"] != nil {
		t.Errorf("_summary=count: total %v, entries %v", b["total"], b["entry"])
	}
	_, _, b = ts.searchIDs(t, "/Observation?code=72514-3&_total=none")
	if _, ok := b["total"]; ok {
		t.Errorf("_total=none gave a total")
	}
	_, _, b = ts.searchIDs(t, "/Observation?_id=pain-before&_elements=valueQuantity")
	res := asList(b["entry"])[0].(map[string]any)["resource"].(map[string]any)
	if _, ok := res["valueQuantity"]; !ok || res["text"] != nil || res["subject"] != nil || res["code"] == nil {
		t.Errorf("_elements=valueQuantity kept %v", keysOf(res))
	}
	if !strings.Contains(mustJSON(res["meta"]), "SUBSETTED") {
		t.Errorf("no SUBSETTED tag: %v", res["meta"])
	}
	_, _, b = ts.searchIDs(t, "/Observation?_id=pain-before&_summary=true")
	res = asList(b["entry"])[0].(map[string]any)["resource"].(map[string]any)
	if res["text"] != nil || res["category"] != nil || res["valueQuantity"] == nil || res["subject"] == nil {
		t.Errorf("_summary=true kept %v", keysOf(res))
	}
	_, _, b = ts.searchIDs(t, "/Observation?_id=pain-before&_summary=data")
	res = asList(b["entry"])[0].(map[string]any)["resource"].(map[string]any)
	if res["text"] != nil || res["category"] == nil {
		t.Errorf("_summary=data kept %v", keysOf(res))
	}
	// The self link shows what was used; an unknown parameter is ignored
	// (lenient) and left out, or refused under handling=strict.
	_, _, b = ts.searchIDs(t, "/Observation?code=72514-3&nonsense=1")
	if self := linkURL(b, "self", ts.URL); strings.Contains(self, "nonsense") || !strings.Contains(self, "code=72514-3") {
		t.Errorf("self link %s", self)
	}
	if r := ts.do(t, http.MethodGet, "/Observation?code=72514-3&nonsense=1", "", "Prefer: handling=strict"); r.status != http.StatusBadRequest {
		t.Errorf("strict handling of an unknown parameter: %d", r.status)
	}
	// POST _search with a form body.
	form := url.Values{"code": {"72514-3"}, "value-quantity": {"gt5"}}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/Observation/_search", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pb map[string]any
	json.NewDecoder(resp.Body).Decode(&pb)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || ids(pb) != "pain-before" {
		t.Errorf("POST _search: %d %s", resp.StatusCode, ids(pb))
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSearchBadInput(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	for _, q := range []string{
		"/Observation?date=notadate",
		"/Observation?value-quantity=abc",
		"/Observation?date=xx2024",
		"/Observation?code:above=123",
		"/Observation?status:exact=final",
		"/Observation?_sort=nonsense",
		"/Observation?_count=-1",
		"/Observation?_total=some",
		"/Observation?_summary=maybe",
		"/Observation?_include=Patient:subject",
		"/Observation?_include=Observation:code",
		"/Observation?subject.name=x",
		"/Observation?code-value-quantity=72514-3",
		"/Observation?_page=garbage",
		"/MedicationRequest?_has:Patient:link:name=x",
		"/?_type=Patient",
	} {
		r := ts.do(t, http.MethodGet, q, "")
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400: %s", q, r.status, r.body)
			continue
		}
		r.issueExpressions(t) // an OperationOutcome
	}
	if r := ts.do(t, http.MethodGet, "/Observation?code=1", "", "Prefer: handling=strict"); r.status != http.StatusOK {
		t.Errorf("strict handling of a known parameter: %d", r.status)
	}
}

// TestSearchDeleted checks that deleted resources and old versions never
// match.
func TestSearchDeleted(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	loadExamples(t, ts)
	ts.do(t, http.MethodDelete, "/Observation/nausea", "")
	if m, _, _ := ts.searchIDs(t, "/Observation?code=422587007"); len(m) != 0 {
		t.Errorf("a deleted resource matched: %v", m)
	}
	pain := strings.Replace(withID(t, example(t, "valid/observation-pain-after.json"), "pain-after"), `"value":3`, `"value":9`, 1)
	ts.do(t, http.MethodPut, "/Observation/pain-after", pain)
	if m, _, _ := ts.searchIDs(t, "/Observation?value-quantity=3"); len(m) != 0 {
		t.Errorf("an old version matched: %v", m)
	}
	if m, _, _ := ts.searchIDs(t, "/Observation?value-quantity=9"); !slices.Equal(m, []string{"Observation/pain-after"}) {
		t.Errorf("the new version did not match: %v", m)
	}
}

// TestSearchModifiers covers string, uri and the rarer modifiers with
// resources made for them.
func TestSearchModifiers(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	put := func(id, body string) {
		t.Helper()
		if r := ts.do(t, http.MethodPut, "/Observation/"+id, body); r.status != http.StatusCreated {
			t.Fatalf("%s: %d %s", id, r.status, r.body)
		}
	}
	put("note-1", `{"resourceType":"Observation","id":"note-1","status":"final","code":{"text":"comment"},
		"meta":{"profile":["http://example.org/fhir/StructureDefinition/infusion-note"],"source":"http://clinic.example.org/ehr",
		"tag":[{"system":"http://example.org/tags","code":"pilot"}],
		"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}]},
		"identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"FILL"}]},"system":"http://lab","value":"A-1"}],
		"subject":{"identifier":{"system":"http://hospital/mrn","value":"MRN-7"}},
		"effectiveDateTime":"2024-06-15T10:00:00Z","valueString":"Crème brûlée tolerated"}`)
	put("note-2", `{"resourceType":"Observation","id":"note-2","status":"final","code":{"text":"comment"},
		"effectiveDateTime":"2020-01-01","valueString":"Patient asleep"}`)
	put("weight-1", `{"resourceType":"Observation","id":"weight-1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},
		"effectiveDateTime":"2024-06-15","valueQuantity":{"value":80.0,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}`)
	tests := []struct {
		query string
		want  []string
	}{
		{"/Observation?value-string=creme", []string{"Observation/note-1"}},
		{"/Observation?value-string=CRÈME BRÛ", []string{"Observation/note-1"}},
		{"/Observation?value-string:exact=Crème brûlée tolerated", []string{"Observation/note-1"}},
		{"/Observation?value-string:exact=creme brulee tolerated", nil},
		{"/Observation?value-string:contains=sleep", []string{"Observation/note-2"}},
		{"/Observation?value-string=sleep", nil},
		{"/Observation?_profile=http://example.org/fhir/StructureDefinition/infusion-note", []string{"Observation/note-1"}},
		{"/Observation?_source:below=http://clinic.example.org", []string{"Observation/note-1"}},
		{"/Observation?_tag=http://example.org/tags|pilot", []string{"Observation/note-1"}},
		{"/Observation?_security=R", []string{"Observation/note-1"}},
		{"/Observation?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|FILL|A-1", []string{"Observation/note-1"}},
		{"/Observation?subject:identifier=http://hospital/mrn|MRN-7", []string{"Observation/note-1"}},
		{"/Observation?date=ap2024-06-14", []string{"Observation/note-1", "Observation/weight-1"}},
		{"/Observation?date=ne2024-06-15&code:text=comment", []string{"Observation/note-2"}},
		{"/Observation?value-quantity=ne80", nil},
		{"/Observation?value-quantity=ap85", []string{"Observation/weight-1"}},
		{"/Observation?value-quantity=80.0", []string{"Observation/weight-1"}},
		{"/Observation?value-quantity:missing=true", []string{"Observation/note-1", "Observation/note-2"}},
		{"/Observation?value-string:missing=false", []string{"Observation/note-1", "Observation/note-2"}},
		{"/Observation?subject:missing=true", []string{"Observation/note-2", "Observation/weight-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, _, _ := ts.searchIDs(t, strings.ReplaceAll(tt.query, " ", "%20"))
			want := slices.Clone(tt.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("matches %v, want %v", got, want)
			}
		})
	}
}

// TestReindexOnStartup empties the search index and marks it as built from
// another parameter table: the next start rebuilds it.
func TestReindexOnStartup(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "infusion.db")
	app, err := server.New(context.Background(), server.Config{DBPath: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: httptest.NewServer(app.Handler()), app: app}
	loadExamples(t, ts)
	ts.Close()
	app.Close()

	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"DELETE FROM search_token", "DELETE FROM search_reference", "UPDATE settings SET value = 'an older table'"} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	ts = newTestServer(t, server.Config{DBPath: dbPath})
	if m, _, _ := ts.searchIDs(t, "/Observation?code=422587007&patient=pat-crps-1"); !slices.Equal(m, []string{"Observation/nausea"}) {
		t.Errorf("after the rebuild: %v", m)
	}
}
