package kit

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"infusion/conformance/kit/fhirpath"
)

func TestRewriteExpr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"(Observation.value.ofType(Quantity)) | (Observation.component.value.ofType(SampledData))": "(Observation.valueQuantity) | (Observation.component.valueSampledData)",
		"(Observation.value as dateTime)":                         "(Observation.valueDateTime)",
		"MedicationRequest.subject.where(resolve() is Patient)":   "MedicationRequest.subject",
		"Resource.meta.lastUpdated":                               "Observation.meta.lastUpdated",
		"(MedicationAdministration.medication.ofType(Reference))": "(MedicationAdministration.medicationReference)",
	} {
		typ := "Observation"
		if got := rewriteExpr(typ, in); got != want {
			t.Errorf("rewriteExpr(%q) = %q, want %q", in, got, want)
		}
		if _, err := fhirpath.Parse(rewriteExpr(typ, in)); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
	// every standard expression the kit carries is within the subset once
	// rewritten
	for name, p := range stdParams {
		if _, err := fhirpath.Parse(rewriteExpr("Observation", p.expr)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValuesOf(t *testing.T) {
	t.Parallel()
	var res map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"resourceType":"Observation","id":"o1",
		"meta":{"tag":[{"system":"s","code":"t"}],"lastUpdated":"2026-01-02T03:04:05.678Z"},
		"identifier":[{"system":"urn:x","value":"v1"}],
		"code":{"coding":[{"system":"http://loinc.org","code":"1-1"},{"system":"http://loinc.org","code":"2-2"}]},
		"subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2024-01-15T10:00:00Z"},
		"valueQuantity":{"value":4.50,"system":"http://unitsofmeasure.org","code":"mg"},
		"component":[{"code":{"coding":[{"system":"c","code":"k"}]},"valueQuantity":{"value":1,"system":"u","code":"x"}}]}`))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		t.Fatal(err)
	}
	// declared without expressions: the standard table gives them
	caps, err := parseCapabilities([]byte(`{"resourceType":"CapabilityStatement","rest":[{"mode":"server","resource":[{"type":"Observation",
		"searchParam":[{"name":"component-code","type":"token"},{"name":"component-value-quantity","type":"quantity"},
		{"name":"component-code-value-quantity","type":"composite","documentation":"Components: code and value"}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{caps: caps}
	for _, tc := range []struct {
		typ, expr string
		want      []string
	}{
		{"token", "Observation.code", []string{"http://loinc.org|1-1", "http://loinc.org|2-2"}},
		{"token", "Observation.identifier", []string{"urn:x|v1"}},
		{"token", "Resource.meta.tag", []string{"s|t"}},
		{"token", "Resource.id", []string{"o1"}},
		{"reference", "Observation.subject.where(resolve() is Patient)", []string{"Patient/p1"}},
		{"date", "Observation.effective", []string{"2024-01-15T10:00:00Z"}},
		{"quantity", "(Observation.value.ofType(Quantity))", []string{"4.50|http://unitsofmeasure.org|mg"}},
		{"quantity", "(Observation.component.value.ofType(Quantity))", []string{"1|u|x"}},
	} {
		items, err := fhirpath.Evaluate(res, rewriteExpr("Observation", tc.expr), fhirpath.Env{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range items {
			got = append(got, valuesOf(tc.typ, it)...)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.expr, got, tc.want)
		}
	}
	// composites join their components' values with $
	got, why := r.paramValues("Observation", "component-code-value-quantity", res)
	if !slices.Equal(got, []string{"c|k$1|u|x"}) {
		t.Errorf("component-code-value-quantity: %v (%s)", got, why)
	}
}

func TestDateValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		match string
		other []string
		want  string
	}{
		{"2024-01-15T10:00:00Z", []string{"2019-06-01T08:00:00Z"}, "2024-01-15"},
		{"2024-01-15", nil, "2024-01-15"},
		{"2026-01-02T03:04:05.100Z", []string{"2026-01-02T03:04:05.200Z"}, "le2026-01-02T03:04:05.100Z"},
		{"2026-01-02T03:04:05.300Z", []string{"2026-01-02T03:04:05.200Z"}, "ge2026-01-02T03:04:05.300Z"},
		{"2026-01-02T03:04:05.200Z", []string{"2026-01-02T03:04:05.200Z"}, ""},
	} {
		if got := dateValue(tc.match, tc.other); got != tc.want {
			t.Errorf("dateValue(%q, %q) = %q, want %q", tc.match, tc.other, got, tc.want)
		}
	}
}
