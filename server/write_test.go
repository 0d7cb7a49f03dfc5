package server_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"infusion/server"
)

const jsonPatch = "Content-Type: application/json-patch+json"

// fhirPathPatch is a Parameters resource with one FHIRPath Patch operation.
func fhirPathPatch(parts string) string {
	return `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[` + parts + `]}]}`
}

// TestPatch covers JSON Patch and FHIRPath Patch: a new version on
// success; If-Match; 400 for a malformed patch, 422 for one that does not
// apply or yields an invalid resource, with nothing changed.
func TestPatch(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	id := ts.create(t, "Observation", pain("preliminary", 7, ""))
	path := "/Observation/" + id
	version := 1
	tests := []struct {
		name    string
		body    string
		headers []string
		status  int
		check   func(t *testing.T, obs map[string]any)
	}{
		{"JSON Patch", `[{"op":"replace","path":"/status","value":"final"},{"op":"add","path":"/note","value":[{"text":"after the first session"}]}]`,
			[]string{jsonPatch}, 200, func(t *testing.T, obs map[string]any) {
				if obs["status"] != "final" || len(asList(obs["note"])) != 1 {
					t.Errorf("patched: %v %v", obs["status"], obs["note"])
				}
			}},
		{"JSON Patch test op", `[{"op":"test","path":"/status","value":"final"},{"op":"replace","path":"/valueQuantity/value","value":6}]`,
			[]string{jsonPatch, `If-Match: W/"2"`}, 200, func(t *testing.T, obs map[string]any) {
				if obs["valueQuantity"].(map[string]any)["value"] != 6.0 {
					t.Errorf("value %v", obs["valueQuantity"])
				}
			}},
		{"FHIRPath replace", fhirPathPatch(`{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Observation.status"},{"name":"value","valueCode":"amended"}`),
			nil, 200, func(t *testing.T, obs map[string]any) {
				if obs["status"] != "amended" {
					t.Errorf("status %v", obs["status"])
				}
			}},
		{"FHIRPath add", fhirPathPatch(`{"name":"type","valueCode":"add"},{"name":"path","valueString":"Observation"},{"name":"name","valueString":"interpretation"},
			{"name":"value","valueCodeableConcept":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"H"}]}}`),
			[]string{`If-Match: W/"4"`}, 200, func(t *testing.T, obs map[string]any) {
				if len(asList(obs["interpretation"])) != 1 {
					t.Errorf("interpretation %v", obs["interpretation"])
				}
			}},
		{"FHIRPath delete", fhirPathPatch(`{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.note[0]"}`),
			nil, 200, func(t *testing.T, obs map[string]any) {
				if obs["note"] != nil {
					t.Errorf("note %v", obs["note"])
				}
			}},
		{"stale If-Match", `[{"op":"replace","path":"/status","value":"final"}]`, []string{jsonPatch, `If-Match: W/"1"`}, 412, nil},
		{"malformed JSON Patch", `[{"op":"jump","path":"/status"}]`, []string{jsonPatch}, 400, nil},
		{"JSON Patch not JSON", `[{"op":`, []string{jsonPatch}, 400, nil},
		{"failing test op", `[{"op":"test","path":"/status","value":"preliminary"}]`, []string{jsonPatch}, 422, nil},
		{"path not there", `[{"op":"remove","path":"/focus/0"}]`, []string{jsonPatch}, 422, nil},
		{"invalid result", `[{"op":"remove","path":"/code"}]`, []string{jsonPatch}, 422, nil},
		{"invalid value", `[{"op":"replace","path":"/status","value":"sort of"}]`, []string{jsonPatch}, 422, nil},
		{"changing the id", `[{"op":"replace","path":"/id","value":"other"}]`, []string{jsonPatch}, 422, nil},
		{"FHIRPath unknown type", fhirPathPatch(`{"name":"type","valueCode":"rotate"},{"name":"path","valueString":"Observation.status"}`), nil, 400, nil},
		{"FHIRPath to an invalid result", fhirPathPatch(`{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.status"}`), nil, 422, nil},
		{"not a patch", pain("final", 1, ""), nil, 400, nil},
		{"no body", "", []string{jsonPatch}, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, http.MethodPatch, path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status != http.StatusOK {
				if got := ts.do(t, http.MethodGet, path, "").header.Get("ETag"); got != `W/"`+strconv.Itoa(version)+`"` {
					t.Errorf("a failed patch changed the version to %s", got)
				}
				return
			}
			version++
			if got := r.header.Get("ETag"); got != `W/"`+strconv.Itoa(version)+`"` {
				t.Errorf("ETag %s, want version %d", got, version)
			}
			tt.check(t, r.json(t))
		})
	}
	// search follows the patched version
	if n := len(entries(t, ts.do(t, http.MethodGet, "/Observation?status=amended", ""))); n != 1 {
		t.Errorf("search by the patched status found %d", n)
	}
	if n := len(entries(t, ts.do(t, http.MethodGet, "/Observation?status=preliminary", ""))); n != 0 {
		t.Errorf("search by the old status found %d", n)
	}
	if r := ts.do(t, http.MethodPatch, "/Observation/nope", `[]`, jsonPatch); r.status != http.StatusNotFound {
		t.Errorf("patch of an unknown id: %d", r.status)
	}
	ts.do(t, http.MethodDelete, path, "")
	if r := ts.do(t, http.MethodPatch, path, `[]`, jsonPatch); r.status != http.StatusGone {
		t.Errorf("patch of a deleted resource: %d", r.status)
	}
}

// TestConditionalCreate covers If-None-Exist: no match creates, one
// returns it, several fail.
func TestConditionalCreate(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	cond := "If-None-Exist: identifier=" + orderSystem + "|C-1"
	r := ts.do(t, http.MethodPost, "/MedicationRequest", order("C-1", ""), cond)
	if r.status != http.StatusCreated {
		t.Fatalf("no match: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"]
	r = ts.do(t, http.MethodPost, "/MedicationRequest", order("C-1", ""), cond)
	if r.status != http.StatusOK || r.json(t)["id"] != id || r.header.Get("ETag") != `W/"1"` {
		t.Errorf("one match: %d %v %s", r.status, r.json(t)["id"], r.header.Get("ETag"))
	}
	ts.create(t, "MedicationRequest", order("C-1", ""))
	r = ts.do(t, http.MethodPost, "/MedicationRequest", order("C-1", ""), cond)
	if r.status != http.StatusPreconditionFailed {
		t.Errorf("two matches: %d %s", r.status, r.body)
	}
	r = ts.do(t, http.MethodPost, "/MedicationRequest", order("C-1", ""), "If-None-Exist: colour=red")
	if r.status != http.StatusBadRequest {
		t.Errorf("unknown parameter in the condition: %d %s", r.status, r.body)
	}
	if n := ts.historyCount(t); n != 2 {
		t.Errorf("%d versions, want 2", n)
	}
}

// TestConditionalUpdate covers PUT /T?search: no match creates, one
// updates, several fail.
func TestConditionalUpdate(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	path := "/MedicationRequest?identifier=" + url.QueryEscape(orderSystem+"|U-1")
	r := ts.do(t, http.MethodPut, path, order("U-1", ""))
	if r.status != http.StatusCreated {
		t.Fatalf("no match: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	r = ts.do(t, http.MethodPut, path, order("U-1", `,"priority":"urgent"`))
	if r.status != http.StatusOK || r.json(t)["id"] != id || r.header.Get("ETag") != `W/"2"` {
		t.Errorf("one match: %d %s %s", r.status, r.header.Get("ETag"), r.body)
	}
	r = ts.do(t, http.MethodPut, path, withID(t, order("U-1", ""), "someone-else"))
	if r.status != http.StatusBadRequest {
		t.Errorf("body id differs from the match: %d %s", r.status, r.body)
	}
	r = ts.do(t, http.MethodPut, "/MedicationRequest?identifier="+url.QueryEscape(orderSystem+"|U-2"), withID(t, order("U-2", ""), "chosen-id"))
	if r.status != http.StatusCreated || r.json(t)["id"] != "chosen-id" {
		t.Errorf("no match, with an id: %d %s", r.status, r.body)
	}
	ts.create(t, "MedicationRequest", order("U-1", ""))
	before := ts.historyCount(t)
	if r := ts.do(t, http.MethodPut, path, order("U-1", "")); r.status != http.StatusPreconditionFailed {
		t.Errorf("two matches: %d %s", r.status, r.body)
	}
	if r := ts.do(t, http.MethodPut, "/MedicationRequest?colour=red", order("U-1", "")); r.status != http.StatusBadRequest {
		t.Errorf("unknown parameter: %d %s", r.status, r.body)
	}
	if after := ts.historyCount(t); after != before {
		t.Errorf("failed conditional updates wrote %d versions", after-before)
	}
}

// TestConditionalDelete covers DELETE /T?search: one at a time by
// default, several with the multiple setting.
func TestConditionalDelete(t *testing.T) {
	for _, multiple := range []bool{false, true} {
		ts := newTestServer(t, server.Config{ConditionalDeleteMultiple: multiple})
		path := "/Observation?status=preliminary"
		if r := ts.do(t, http.MethodDelete, path, ""); r.status != http.StatusOK {
			t.Errorf("no match: %d %s", r.status, r.body)
		}
		one := ts.create(t, "Observation", pain("preliminary", 3, ""))
		if r := ts.do(t, http.MethodDelete, path, ""); r.status != http.StatusOK || r.header.Get("ETag") != `W/"2"` {
			t.Errorf("one match: %d %s %s", r.status, r.header.Get("ETag"), r.body)
		}
		if r := ts.do(t, http.MethodGet, "/Observation/"+one, ""); r.status != http.StatusGone {
			t.Errorf("after the conditional delete: %d", r.status)
		}
		ts.create(t, "Observation", pain("preliminary", 3, ""))
		ts.create(t, "Observation", pain("preliminary", 4, ""))
		kept := ts.create(t, "Observation", pain("final", 4, ""))
		r := ts.do(t, http.MethodDelete, path, "")
		left := len(entries(t, ts.do(t, http.MethodGet, path, "")))
		switch {
		case !multiple && (r.status != http.StatusPreconditionFailed || left != 2):
			t.Errorf("single, two matches: %d, %d left: %s", r.status, left, r.body)
		case multiple && (r.status != http.StatusOK || left != 0 || !strings.Contains(string(r.body), "deleted 2 resources")):
			t.Errorf("multiple, two matches: %d, %d left: %s", r.status, left, r.body)
		}
		if r := ts.do(t, http.MethodGet, "/Observation/"+kept, ""); r.status != http.StatusOK {
			t.Errorf("an observation the condition does not match: %d", r.status)
		}
		if r := ts.do(t, http.MethodDelete, "/Observation?colour=red", ""); r.status != http.StatusBadRequest {
			t.Errorf("unknown parameter: %d %s", r.status, r.body)
		}
	}
}

// TestValidateOperation covers $validate: always 200 with an
// OperationOutcome, the same checks as create and update, nothing written.
func TestValidateOperation(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	id := ts.create(t, "Observation", pain("final", 5, ""))
	params := func(mode, resource string) string {
		p := `{"resourceType":"Parameters","parameter":[{"name":"mode","valueCode":"` + mode + `"}`
		if resource != "" {
			p += `,{"name":"resource","resource":` + resource + `}`
		}
		return p + `]}`
	}
	tests := []struct {
		name, path, body string
		valid            bool
		expression       string
	}{
		{"valid", "/Observation/$validate", pain("final", 5, ""), true, ""},
		{"invalid code", "/Observation/$validate", pain("bogus", 5, ""), false, "Observation.status"},
		{"unknown element", "/Observation/$validate", pain("final", 5, `,"colour":"red"`), false, "Observation.colour"},
		{"other type", "/MedicationRequest/$validate", pain("final", 5, ""), false, "resourceType"},
		{"malformed", "/Observation/$validate", `{"resourceType":`, false, ""},
		{"Parameters create", "/Observation/$validate", params("create", pain("final", 5, "")), true, ""},
		{"Parameters update", "/Observation/" + id + "/$validate", params("update", withID(t, pain("final", 5, ""), id)), true, ""},
		{"update without id", "/Observation/" + id + "/$validate", params("update", pain("final", 5, "")), false, "Observation.id"},
		{"update with another id", "/Observation/" + id + "/$validate", params("update", withID(t, pain("final", 5, ""), "x")), false, "Observation.id"},
		{"delete", "/Observation/" + id + "/$validate", params("delete", ""), true, ""},
		{"delete of an unknown id", "/Observation/nope/$validate", params("delete", ""), false, ""},
		{"no resource", "/Observation/$validate", params("create", ""), false, ""},
	}
	before := ts.historyCount(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, http.MethodPost, tt.path, tt.body)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			exprs := r.issueExpressions(t)
			valid := !strings.Contains(string(r.body), `"severity":"error"`) && !strings.Contains(string(r.body), `"severity":"fatal"`)
			if valid != tt.valid {
				t.Errorf("valid %v, want %v: %s", valid, tt.valid, r.body)
			}
			if tt.valid && !strings.Contains(string(r.body), `"severity":"information"`) {
				t.Errorf("no information issue: %s", r.body)
			}
			if tt.expression != "" && !contains(exprs, tt.expression) {
				t.Errorf("issues name %v, want %s", exprs, tt.expression)
			}
		})
	}
	if r := ts.do(t, http.MethodPost, "/Observation/$validate", params("erase", "")); r.status != http.StatusBadRequest {
		t.Errorf("unknown mode: %d %s", r.status, r.body)
	}
	if after := ts.historyCount(t); after != before {
		t.Errorf("$validate wrote %d versions", after-before)
	}
}
