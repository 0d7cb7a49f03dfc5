package fhirpath

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const obs = `{
  "resourceType": "Observation", "id": "pain-1", "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}, {"system": "http://snomed.info/sct", "code": "22253000"}]},
  "effectiveDateTime": "2024-03-11T13:15:00+01:00",
  "valueQuantity": {"value": 3.50, "unit": "{score}"},
  "note": [{"text": "a"}, {"text": "b"}],
  "subject": {"reference": "Patient/p1"}
}`

const bundle = `{
  "resourceType": "Bundle", "type": "collection",
  "entry": [
    {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "MedicationRequest", "id": "o1", "status": "active"}},
    {"fullUrl": "http://x/fhir/MedicationAdministration/a1", "resource": {"resourceType": "MedicationAdministration", "id": "a1", "status": "completed", "request": {"reference": "MedicationRequest/o1"}}},
    {"resource": {"resourceType": "MedicationAdministration", "id": "a2", "status": "completed", "request": {"reference": "urn:uuid:1"}}}
  ]
}`

func decode(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEvaluate(t *testing.T) {
	o, b := decode(t, obs), decode(t, bundle)
	for _, tc := range []struct {
		res  any
		expr string
		want string // the result collection, as JSON
	}{
		{o, "Observation.status", `["final"]`},
		{o, "status", `["final"]`},
		{o, "Observation.code.coding.code", `["72514-3","22253000"]`},
		{o, "code.coding[1].system", `["http://snomed.info/sct"]`},
		{o, "code.coding[5].system", `null`},
		{o, "Observation.value.value", `[3.50]`},
		{o, "valueQuantity.unit", `["{score}"]`},
		{o, "value.value = 3.5", `[true]`},
		{o, "value.value > 3", `[true]`},
		{o, "value.value <= 3", `[false]`},
		{o, "value.value >= 3.50 and value.value < 4", `[true]`},
		{o, "status != 'final'", `[false]`},
		{o, "status = 'final' or status = 'x'", `[true]`},
		{o, "status = 'x' implies false", `[true]`},
		{o, "code.coding.where(system = 'http://loinc.org').code", `["72514-3"]`},
		{o, "code.coding.where(system = %loinc).exists()", `[true]`},
		{o, "code.coding.exists(code = '72514-3')", `[true]`},
		{o, "code.coding.exists(code = 'nope')", `[false]`},
		{o, "note.count()", `[2]`},
		{o, "note.count() = 2", `[true]`},
		{o, "note.first().text", `["a"]`},
		{o, "note.last().text", `["b"]`},
		{o, "note.tail().text", `["b"]`},
		{o, "method.empty()", `[true]`},
		{o, "method.exists().not()", `[true]`},
		{o, "status.exists() and method.exists()", `[false]`},
		{o, "method = 'x'", `null`},
		{o, "effective > @2024-03-01", `[true]`},
		{o, "note.select(text)", `["a","b"]`},
		{o, "(note.text | 'c').count()", `[3]`},
		{o, "%resource.id + '-x'", `["pain-1-x"]`},
		{o, "%order.status", `["active"]`},
		{o, "1 + 2.5", `[3.5]`},
		{o, "-1 < 0", `[true]`},
		{o, "true and {}", `null`},
		{o, "false and {}", `[false]`},
		{o, `'it\'s'`, `["it's"]`},
		{o, "value.value.toString()", `["3.50"]`},
		{o, "subject.reference.hasValue()", `[true]`},
		{b, "Bundle.entry.resource.where(resourceType = 'MedicationAdministration').request.resolve().status", `["active","active"]`},
		{b, "entry[1].resource.request.resolve().id", `["o1"]`},
		{b, "entry[2].resource.request.resolve().id", `["o1"]`},
		{b, "'MedicationAdministration/a1'.resolve().id", `["a1"]`},
		{b, "entry.resource.where(id = 'a1').all(status = 'completed')", `[true]`},
	} {
		var env Env
		env.Vars = map[string][]any{"order": {map[string]any{"status": "active"}}}
		got, err := Evaluate(tc.res, tc.expr, env)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		j, _ := json.Marshal(got)
		if string(j) != tc.want {
			t.Errorf("%s = %s, want %s", tc.expr, j, tc.want)
		}
	}
}

func TestOutsideSubset(t *testing.T) {
	o := decode(t, obs)
	for _, tc := range []struct{ expr, want string }{
		{"value.ofType(Quantity)", "ofType() is outside"},
		{"value is Quantity", `"is"`},
		{"status ~ 'final'", `"~"`},
		{"4 'mg'", "quantity literals"},
		{"2 * 3", `"*"`},
		{"%missing", "not defined"},
		{"status = ", "unexpected end"},
		{"code.coding.where()", "where() takes"},
		{"status.matches('f.*')", "matches() is outside"},
		{"'open", "unterminated"},
		{"note.text > 'a'", "single items"},
	} {
		_, err := Evaluate(o, tc.expr, Env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %s", tc.expr, err, tc.want)
		}
	}
}

func TestTruth(t *testing.T) {
	for _, tc := range []struct {
		in       []any
		val, ok  bool
		hasError bool
	}{
		{nil, false, false, false},
		{[]any{true}, true, true, false},
		{[]any{false}, false, true, false},
		{[]any{"x"}, true, true, false},
		{[]any{true, false}, false, false, true},
	} {
		v, ok, err := Truth(tc.in)
		if v != tc.val || ok != tc.ok || (err != nil) != tc.hasError {
			t.Errorf("Truth(%v) = %v %v %v", tc.in, v, ok, err)
		}
	}
}
