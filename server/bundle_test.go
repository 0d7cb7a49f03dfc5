package server_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"infusion/fhir/fhirtest"
	"infusion/server"
)

// obj is a JSON object under construction.
type obj = map[string]any

// bundleOf builds a batch or transaction Bundle from entries.
func bundleOf(tb testing.TB, kind string, entries ...obj) string {
	tb.Helper()
	list := make([]any, len(entries))
	for i, e := range entries {
		list[i] = e
	}
	data, err := json.Marshal(obj{"resourceType": "Bundle", "type": kind, "entry": list})
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// request is a Bundle entry: method and url, a resource (JSON text or
// nil), and more members of the entry or of its request.
func request(tb testing.TB, method, url, resource string, more ...string) obj {
	tb.Helper()
	req := obj{"method": method, "url": url}
	e := obj{"request": req}
	if resource != "" {
		var r any
		if err := json.Unmarshal([]byte(resource), &r); err != nil {
			tb.Fatal(err)
		}
		e["resource"] = r
	}
	for _, m := range more {
		k, v, _ := strings.Cut(m, "=")
		if k == "fullUrl" {
			e[k] = v
		} else {
			req[k] = v
		}
	}
	return e
}

const (
	orderSystem = "http://example.org/fhir/sid/infusion-order"
	orderJSON   = `{"resourceType":"MedicationRequest","identifier":[{"system":"` + orderSystem + `","value":"%s"}],
		"status":"active","intent":"order","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"6130","display":"ketamine"}]},
		"subject":{"reference":"Patient/p1"}%s}`
	administrationJSON = `{"resourceType":"MedicationAdministration","status":"completed",
		"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"6130","display":"ketamine"}]},
		"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-03-11T09:00:00Z"%s}`
	painJSON = `{"resourceType":"Observation","status":"%s","code":{"coding":[{"system":"http://loinc.org","code":"72514-3"}]},
		"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-03-11T08:50:00Z","valueQuantity":{"value":%d,"system":"http://unitsofmeasure.org","code":"{score}"}%s}`
)

func order(value, more string) string   { return fmt.Sprintf(orderJSON, value, more) }
func administration(more string) string { return fmt.Sprintf(administrationJSON, more) }
func pain(status string, score int, more string) string {
	return fmt.Sprintf(painJSON, status, score, more)
}

// entries returns the entries of a Bundle answer.
func entries(tb testing.TB, r response) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, e := range asList(r.json(tb)["entry"]) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// responseOf returns an entry's response.
func responseOf(e map[string]any) map[string]any {
	r, _ := e["response"].(map[string]any)
	return r
}

// idOf returns the id of an entry's response.location Type/id/_history/v.
func idOf(tb testing.TB, e map[string]any) string {
	tb.Helper()
	loc, _ := responseOf(e)["location"].(string)
	parts := strings.Split(loc, "/")
	if len(parts) != 4 || parts[2] != "_history" {
		tb.Fatalf("location %q is not Type/id/_history/v", loc)
	}
	return parts[1]
}

// TestTransaction sends an infusion course — order, administration, pain
// score, linked by urn:uuid — with an update, a search and a delete, and
// checks the answer entry by entry and what was stored.
func TestTransaction(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	old := ts.create(t, "Observation", pain("final", 9, ""))
	tx := bundleOf(t, "transaction",
		request(t, "GET", "MedicationRequest?identifier="+orderSystem+"|TX-1", ""), // runs last: sees the order
		request(t, "POST", "MedicationRequest", order("TX-1", `,"extension":[{"url":"http://example.org/fhir/StructureDefinition/first-session","valueReference":{"reference":"urn:uuid:22222222-2222-4222-8222-222222222222"}}]`),
			"fullUrl=urn:uuid:11111111-1111-4111-8111-111111111111"),
		request(t, "POST", "MedicationAdministration", administration(`,"request":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}`),
			"fullUrl=urn:uuid:22222222-2222-4222-8222-222222222222"),
		request(t, "POST", "Observation", pain("final", 7, `,"partOf":[{"reference":"urn:uuid:22222222-2222-4222-8222-222222222222"}],
			"contained":[{"resourceType":"Observation","id":"c1","status":"final","code":{"text":"pre-infusion heart rate"},
				"partOf":[{"reference":"urn:uuid:22222222-2222-4222-8222-222222222222"}]}],
			"derivedFrom":[{"reference":"#c1"}]`), "fullUrl=urn:oid:1.2.3.4"),
		request(t, "PUT", "Observation/after-1", withID(t, pain("final", 3, `,"basedOn":[{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}]`), "after-1")),
		request(t, "DELETE", "Observation/"+old, ""),
	)
	r := ts.do(t, http.MethodPost, "/", tx)
	if r.status != http.StatusOK {
		t.Fatalf("transaction: %d %s", r.status, r.body)
	}
	if got := r.json(t)["type"]; got != "transaction-response" {
		t.Fatalf("answer is a %v", got)
	}
	es := entries(t, r)
	wantStatus := []string{"200 OK", "201 Created", "201 Created", "201 Created", "201 Created", "200 OK"}
	if len(es) != len(wantStatus) {
		t.Fatalf("%d entries, want %d", len(es), len(wantStatus))
	}
	for i, e := range es {
		resp := responseOf(e)
		if resp["status"] != wantStatus[i] {
			t.Errorf("entry %d: status %v, want %s", i, resp["status"], wantStatus[i])
		}
		if i >= 1 && i <= 4 {
			if resp["etag"] != `W/"1"` || resp["lastModified"] == nil || e["resource"] == nil {
				t.Errorf("entry %d: etag %v lastModified %v resource %v", i, resp["etag"], resp["lastModified"], e["resource"] != nil)
			}
		}
	}
	search := es[0]["resource"].(map[string]any)
	if search["type"] != "searchset" || len(asList(search["entry"])) != 1 {
		t.Errorf("the search in the transaction found %v", search["entry"])
	}
	orderID, adminID, obsID := idOf(t, es[1]), idOf(t, es[2]), idOf(t, es[3])

	admin := ts.do(t, http.MethodGet, "/MedicationAdministration/"+adminID, "").json(t)
	if got := admin["request"].(map[string]any)["reference"]; got != "MedicationRequest/"+orderID {
		t.Errorf("administration.request = %v, want MedicationRequest/%s", got, orderID)
	}
	ord := ts.do(t, http.MethodGet, "/MedicationRequest/"+orderID, "").json(t)
	ext := asList(ord["extension"])[0].(map[string]any)["valueReference"].(map[string]any)["reference"]
	if ext != "MedicationAdministration/"+adminID {
		t.Errorf("reference in an extension = %v", ext)
	}
	obs := ts.do(t, http.MethodGet, "/Observation/"+obsID, "")
	if !strings.Contains(string(obs.body), `"MedicationAdministration/`+adminID+`"`) || strings.Contains(string(obs.body), "urn:") {
		t.Errorf("observation references not rewritten: %s", obs.body)
	}
	contained := asList(obs.json(t)["contained"])[0].(map[string]any)
	if got := asList(contained["partOf"])[0].(map[string]any)["reference"]; got != "MedicationAdministration/"+adminID {
		t.Errorf("reference in a contained resource = %v", got)
	}
	after := ts.do(t, http.MethodGet, "/Observation/after-1", "").json(t)
	if got := asList(after["basedOn"])[0].(map[string]any)["reference"]; got != "MedicationRequest/"+orderID {
		t.Errorf("PUT entry reference = %v", got)
	}
	if r := ts.do(t, http.MethodGet, "/Observation/"+old, ""); r.status != http.StatusGone {
		t.Errorf("deleted in the transaction, read: %d", r.status)
	}
	// searches see the rewritten references
	if n := len(entries(t, ts.do(t, http.MethodGet, "/Observation?part-of=MedicationAdministration/"+adminID, ""))); n != 1 {
		t.Errorf("search by part-of found %d", n)
	}

	// versions written in a transaction: vread, and history with the method
	if r := ts.do(t, http.MethodGet, "/MedicationRequest/"+orderID+"/_history/1", ""); r.status != http.StatusOK {
		t.Errorf("vread: %d", r.status)
	}
	methods := map[string]string{}
	for _, e := range entries(t, ts.do(t, http.MethodGet, "/_history", "")) {
		req := e["request"].(map[string]any)
		methods[req["url"].(string)] = req["method"].(string)
	}
	for url, want := range map[string]string{"MedicationRequest": "POST", "Observation/after-1": "PUT", "Observation/" + old: "DELETE"} {
		if methods[url] != want {
			t.Errorf("history: %s by %q, want %s (%v)", url, methods[url], want, methods)
		}
	}
}

// TestTransactionPrefer checks that the entries follow Prefer: return=.
func TestTransactionPrefer(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	tx := bundleOf(t, "transaction", request(t, "POST", "Observation", pain("final", 4, "")))
	tests := []struct {
		prefer               string
		resource, outcome    bool
		wantResourceTypeOfOO bool
	}{
		{"", true, false, false},
		{"return=representation", true, false, false},
		{"return=minimal", false, false, false},
		{"return=OperationOutcome", false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.prefer, func(t *testing.T) {
			var headers []string
			if tt.prefer != "" {
				headers = append(headers, "Prefer: "+tt.prefer)
			}
			e := entries(t, ts.do(t, http.MethodPost, "/", tx, headers...))[0]
			resp := responseOf(e)
			if (e["resource"] != nil) != tt.resource || (resp["outcome"] != nil) != tt.outcome {
				t.Errorf("resource %v outcome %v", e["resource"] != nil, resp["outcome"] != nil)
			}
			if resp["location"] == nil || resp["etag"] == nil || resp["lastModified"] == nil {
				t.Errorf("response %v lacks location, etag or lastModified", resp)
			}
		})
	}
}

// TestTransactionOrder checks the processing order: deletes before
// creates, so that a conditional create after a delete of its match
// creates; reads last.
func TestTransactionOrder(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	ts.create(t, "MedicationRequest", order("ORD-1", ""))
	tx := bundleOf(t, "transaction",
		request(t, "POST", "MedicationRequest", order("ORD-1", ""), "ifNoneExist=identifier="+orderSystem+"|ORD-1"),
		request(t, "DELETE", "MedicationRequest?identifier="+orderSystem+"|ORD-1", ""),
	)
	r := ts.do(t, http.MethodPost, "/", tx)
	es := entries(t, r)
	if r.status != http.StatusOK || responseOf(es[0])["status"] != "201 Created" || responseOf(es[1])["status"] != "200 OK" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if n := len(entries(t, ts.do(t, http.MethodGet, "/MedicationRequest?identifier="+orderSystem+"|ORD-1", ""))); n != 1 {
		t.Errorf("after delete and create: %d orders", n)
	}
}

// TestTransactionConditional covers conditional creates, updates and
// references inside a transaction.
func TestTransactionConditional(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	existing := ts.create(t, "MedicationRequest", order("ORD-7", ""))
	tx := bundleOf(t, "transaction",
		request(t, "POST", "MedicationRequest", order("ORD-7", ""), "ifNoneExist=identifier="+orderSystem+"|ORD-7",
			"fullUrl=urn:uuid:33333333-3333-4333-8333-333333333333"),
		request(t, "POST", "MedicationAdministration", administration(`,"request":{"reference":"urn:uuid:33333333-3333-4333-8333-333333333333"}`)),
		request(t, "POST", "Observation", pain("final", 6, `,"basedOn":[{"reference":"MedicationRequest?identifier=`+orderSystem+`|ORD-7"}]`)),
		request(t, "PUT", "MedicationRequest?identifier="+orderSystem+"|ORD-8", order("ORD-8", "")),
	)
	r := ts.do(t, http.MethodPost, "/", tx)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	es := entries(t, r)
	if s := responseOf(es[0])["status"]; s != "200 OK" || idOf(t, es[0]) != existing {
		t.Errorf("conditional create of an existing order: %v %v", s, responseOf(es[0])["location"])
	}
	if s := responseOf(es[3])["status"]; s != "201 Created" {
		t.Errorf("conditional update with no match: %v", s)
	}
	if r := ts.do(t, http.MethodGet, "/MedicationRequest/"+existing+"/_history", ""); len(entries(t, r)) != 1 {
		t.Errorf("the matched order got a new version")
	}
	for i, typ := range map[int]string{1: "MedicationAdministration", 2: "Observation"} {
		body := ts.do(t, http.MethodGet, "/"+typ+"/"+idOf(t, es[i]), "").body
		if !strings.Contains(string(body), `"MedicationRequest/`+existing+`"`) {
			t.Errorf("%s does not point at the existing order: %s", typ, body)
		}
	}
}

// TestTransactionPatch patches inside a transaction: a FHIRPath Patch, a
// JSON Patch carried as a Binary, both honouring request.ifMatch.
func TestTransactionPatch(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	a := ts.create(t, "Observation", pain("preliminary", 6, ""))
	b := ts.create(t, "Observation", pain("preliminary", 8, ""))
	jsonPatch := base64.StdEncoding.EncodeToString([]byte(`[{"op":"replace","path":"/status","value":"final"}]`))
	tx := bundleOf(t, "transaction",
		request(t, "PATCH", "Observation/"+a, fhirPathPatch(`{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Observation.status"},{"name":"value","valueCode":"final"}`), `ifMatch=W/"1"`),
		request(t, "PATCH", "Observation/"+b, `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"`+jsonPatch+`"}`),
	)
	r := ts.do(t, http.MethodPost, "/", tx)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for i, e := range entries(t, r) {
		if resp := responseOf(e); resp["status"] != "200 OK" || resp["etag"] != `W/"2"` || e["resource"].(map[string]any)["status"] != "final" {
			t.Errorf("entry %d: %v %v", i, resp, e["resource"])
		}
	}
	stale := bundleOf(t, "transaction",
		request(t, "PATCH", "Observation/"+a, fhirPathPatch(`{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.note"}`), `ifMatch=W/"1"`))
	if r := ts.do(t, http.MethodPost, "/", stale); r.status != http.StatusPreconditionFailed {
		t.Errorf("stale ifMatch: %d %s", r.status, r.body)
	}
}

// TestTransactionRollback sends transactions whose last entry fails and
// checks the status, that the issue names the entry, and that nothing was
// written.
func TestTransactionRollback(t *testing.T) {
	ts := newTestServer(t, server.Config{MaxEntries: 5})
	ts.create(t, "MedicationRequest", order("TWIN", ""))
	ts.create(t, "MedicationRequest", order("TWIN", ""))
	current := ts.create(t, "Observation", pain("final", 5, ""))
	first := request(t, "POST", "MedicationRequest", order("NEW-1", ""), "fullUrl=urn:uuid:44444444-4444-4444-8444-444444444444")
	tests := []struct {
		name       string
		last       obj
		status     int
		expression string
		diagnostic string
	}{
		{"invalid resource", request(t, "POST", "Observation", pain("bogus", 5, "")), 400, "Bundle.entry[3].resource.status", ""},
		{"unknown element", request(t, "POST", "Observation", pain("final", 5, `,"colour":"red"`)), 400, "Bundle.entry[3].resource.colour", ""},
		{"stale ifMatch", request(t, "PUT", "Observation/"+current, withID(t, pain("final", 2, ""), current), `ifMatch=W/"9"`), 412, "Bundle.entry[3]", ""},
		{"two entries, one resource", request(t, "PUT", "Observation/twice", withID(t, pain("final", 2, ""), "twice")), 400, "Bundle.entry[3].request.url", "Observation/twice"},
		{"conditional reference, two matches", request(t, "POST", "Observation", pain("final", 5, `,"basedOn":[{"reference":"MedicationRequest?identifier=`+orderSystem+`|TWIN"}]`)), 412, "Bundle.entry[3].resource", "matches 2"},
		{"conditional reference, no match", request(t, "POST", "Observation", pain("final", 5, `,"basedOn":[{"reference":"MedicationRequest?identifier=`+orderSystem+`|NONE"}]`)), 404, "Bundle.entry[3].resource", "matches nothing"},
		{"conditional create, two matches", request(t, "POST", "MedicationRequest", order("TWIN", ""), "ifNoneExist=identifier="+orderSystem+"|TWIN"), 412, "Bundle.entry[3].request.ifNoneExist", ""},
		{"conditional update, two matches", request(t, "PUT", "MedicationRequest?identifier="+orderSystem+"|TWIN", order("TWIN", "")), 412, "Bundle.entry[3].request.url", ""},
		{"unresolved urn", request(t, "POST", "Observation", pain("final", 5, `,"partOf":[{"reference":"urn:uuid:99999999-9999-4999-8999-999999999999"}]`)), 400, "Bundle.entry[3].resource", "urn:uuid:9999"},
		{"type not stored", request(t, "POST", "Patient", `{"resourceType":"Patient"}`), 404, "Bundle.entry[3].request.url", "Patient"},
		{"patch to an invalid result", request(t, "PATCH", "Observation/"+current, `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.code"}]}]}`), 422, "Bundle.entry[3]", ""},
		{"patch of an unknown id", request(t, "PATCH", "Observation/nope", `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.note"}]}]}`), 404, "Bundle.entry[3]", ""},
		{"read of an unknown id", request(t, "GET", "Observation/nope", ""), 404, "Bundle.entry[3]", ""},
		{"no request", obj{"resource": obj{"resourceType": "Observation"}}, 400, "Bundle.entry[3].request", ""},
		{"unknown method", request(t, "TRACE", "Observation", ""), 400, "Bundle.entry[3].request.method", ""},
		{"POST to an id", request(t, "POST", "Observation/x", pain("final", 1, "")), 400, "Bundle.entry[3].request.url", ""},
		{"PUT without id in body", request(t, "PUT", "Observation/x", pain("final", 1, "")), 400, "Bundle.entry[3].resource.id", ""},
		{"resource of another type", request(t, "POST", "MedicationAdministration", pain("final", 1, "")), 400, "Bundle.entry[3].resource.resourceType", ""},
		{"bad ifMatch", request(t, "PUT", "Observation/"+current, withID(t, pain("final", 2, ""), current), "ifMatch=soon"), 400, "Bundle.entry[3].request.ifMatch", ""},
		{"too many entries", nil, 413, "Bundle.entry", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.historyCount(t)
			list := []obj{
				first,
				request(t, "POST", "MedicationAdministration", administration(`,"request":{"reference":"urn:uuid:44444444-4444-4444-8444-444444444444"}`)),
				request(t, "PUT", "Observation/twice", withID(t, pain("final", 1, ""), "twice")),
			}
			if tt.last != nil {
				list = append(list, tt.last)
			} else {
				list = append(list, first, first, first)
			}
			r := ts.do(t, http.MethodPost, "/", bundleOf(t, "transaction", list...))
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if exprs := r.issueExpressions(t); !contains(exprs, tt.expression) {
				t.Errorf("issues name %v, want %s: %s", exprs, tt.expression, r.body)
			}
			if !strings.Contains(string(r.body), tt.diagnostic) {
				t.Errorf("the outcome does not say %q: %s", tt.diagnostic, r.body)
			}
			if after := ts.historyCount(t); after != before {
				t.Errorf("a failed transaction wrote %d versions", after-before)
			}
			if n := len(entries(t, ts.do(t, http.MethodGet, "/MedicationRequest?identifier="+orderSystem+"|NEW-1", ""))); n != 0 {
				t.Errorf("the first entry's order was kept")
			}
		})
	}
}

// TestBundleRequests checks requests to the base that are not a usable
// Bundle.
func TestBundleRequests(t *testing.T) {
	ts := newTestServer(t, server.Config{MaxBody: 2048})
	tests := []struct {
		name, body string
		status     int
		expression string
	}{
		{"not a Bundle", pain("final", 1, ""), 400, "resourceType"},
		{"a collection", `{"resourceType":"Bundle","type":"collection"}`, 400, "Bundle.type"},
		{"malformed", `{"resourceType":"Bundle",`, 400, ""},
		{"invalid Bundle", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Observation"},"colour":1}]}`, 400, "Bundle.entry[0].colour"},
		{"over the body limit", bundleOf(t, "batch", request(t, "POST", "Observation", pain("final", 1, `,"note":[{"text":"`+strings.Repeat("x", 3000)+`"}]`))), 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, http.MethodPost, "/", tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if exprs := r.issueExpressions(t); tt.expression != "" && !contains(exprs, tt.expression) {
				t.Errorf("issues name %v, want %s", exprs, tt.expression)
			}
		})
	}
	if n := ts.historyCount(t); n != 0 {
		t.Errorf("%d versions written", n)
	}
}

// TestBatch checks that the entries of a batch succeed or fail each alone.
func TestBatch(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	existing := ts.create(t, "Observation", pain("final", 5, ""))
	batch := bundleOf(t, "batch",
		request(t, "POST", "Observation", pain("final", 4, "")),
		request(t, "POST", "Observation", pain("bogus", 4, "")),
		request(t, "POST", "Patient", `{"resourceType":"Patient"}`),
		request(t, "POST", "Observation", pain("final", 4, `,"partOf":[{"reference":"urn:uuid:55555555-5555-4555-8555-555555555555"}]`),
			"fullUrl=urn:uuid:66666666-6666-4666-8666-666666666666"),
		request(t, "GET", "Observation/nope", ""),
		request(t, "PUT", "Observation/"+existing, withID(t, pain("final", 3, ""), existing), `ifMatch=W/"4"`),
		request(t, "GET", "Observation/"+existing, ""),
		request(t, "HEAD", "Observation/"+existing, ""),
		request(t, "PUT", "Observation/"+existing, withID(t, pain("final", 2, ""), existing), `ifMatch=W/"1"`),
		request(t, "GET", "Observation?_id="+existing, ""),
		request(t, "GET", "Observation/"+existing+"/_history", ""),
		request(t, "DELETE", "Observation/nope", ""),
	)
	r := ts.do(t, http.MethodPost, "/", batch)
	if r.status != http.StatusOK || r.json(t)["type"] != "batch-response" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	es := entries(t, r)
	want := []struct {
		status     string
		expression string // of the outcome's issue, for a failure
	}{
		{"201 Created", ""},
		{"400 Bad Request", "Bundle.entry[1].resource.status"},
		{"404 Not Found", "Bundle.entry[2].request.url"},
		{"400 Bad Request", "Bundle.entry[3].resource"},
		{"404 Not Found", ""},
		{"412 Precondition Failed", "Bundle.entry[5]"},
		{"200 OK", ""},
		{"200 OK", ""},
		{"200 OK", ""},
		{"200 OK", ""},
		{"200 OK", ""},
		{"200 OK", ""},
	}
	if len(es) != len(want) {
		t.Fatalf("%d entries, want %d", len(es), len(want))
	}
	for i, w := range want {
		resp := responseOf(es[i])
		if resp["status"] != w.status {
			t.Errorf("entry %d: %v, want %s: %v", i, resp["status"], w.status, resp["outcome"])
			continue
		}
		if w.expression != "" {
			oo, _ := json.Marshal(resp["outcome"])
			if !strings.Contains(string(oo), `"`+w.expression+`"`) {
				t.Errorf("entry %d: outcome %s does not name %s", i, oo, w.expression)
			}
		}
	}
	if es[7]["resource"] != nil {
		t.Errorf("HEAD entry carries a resource")
	}
	if got := es[6]["resource"].(map[string]any)["meta"].(map[string]any)["versionId"]; got != "1" {
		t.Errorf("GET after the failed update sees version %v", got)
	}
	if got := ts.do(t, http.MethodGet, "/Observation/"+existing, "").header.Get("ETag"); got != `W/"2"` {
		t.Errorf("after the batch the observation is at %s, want W/\"2\"", got)
	}
	if n := len(entries(t, ts.do(t, http.MethodGet, "/Observation", ""))); n != 2 {
		t.Errorf("%d observations stored, want 2", n)
	}
}

// synthea reads a Synthea Bundle of the shared reference data.
func synthea(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(fhirtest.SharedDir(tb), "fhir", "synthea", "fhir-data-pipes-conditional-refs", name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TestSyntheaBundles sends real EHR Bundles, full of types this server does
// not store: the transaction fails whole naming the first such entry, the
// same Bundle as a batch answers each entry alone.
func TestSyntheaBundles(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	data := synthea(t, "Lanell756_Goodwin327_988f3282-6014-affe-fb17-b051fe0380ee.json")
	r := ts.do(t, http.MethodPost, "/", string(data))
	if r.status != http.StatusNotFound {
		t.Fatalf("transaction: %d %s", r.status, r.body)
	}
	if exprs := r.issueExpressions(t); !contains(exprs, "Bundle.entry[0].request.url") || !strings.Contains(string(r.body), "Patient is not a type this server stores") {
		t.Errorf("outcome does not name the entry and type: %s", r.body)
	}
	if n := ts.historyCount(t); n != 0 {
		t.Errorf("the failed transaction wrote %d versions", n)
	}

	var b map[string]any
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	b["type"] = "batch"
	batch, _ := json.Marshal(b)
	r = ts.do(t, http.MethodPost, "/", string(batch))
	if r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	sent := asList(b["entry"])
	es := entries(t, r)
	if len(es) != len(sent) {
		t.Fatalf("%d answers for %d entries", len(es), len(sent))
	}
	for i, e := range es {
		typ := sent[i].(map[string]any)["resource"].(map[string]any)["resourceType"].(string)
		status := responseOf(e)["status"]
		oo, _ := json.Marshal(responseOf(e)["outcome"])
		switch typ {
		case "Observation", "MedicationRequest": // stored types, but their subject is the Bundle's Patient
			if status != "400 Bad Request" || !strings.Contains(string(oo), "cannot be resolved: the entries of a batch are independent") {
				t.Errorf("entry %d (%s): %v %s", i, typ, status, oo)
			}
		default:
			if status != "404 Not Found" || !strings.Contains(string(oo), typ+" is not a type this server stores") {
				t.Errorf("entry %d (%s): %v %s", i, typ, status, oo)
			}
		}
	}
	if n := ts.historyCount(t); n != 0 {
		t.Errorf("the batch wrote %d versions", n)
	}
}
