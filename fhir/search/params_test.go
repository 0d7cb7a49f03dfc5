package search_test

import (
	"testing"

	"infusion/fhir/model"
	"infusion/fhir/search"
)

func newRegistry(tb testing.TB) *search.Registry {
	tb.Helper()
	m, err := model.Load()
	if err != nil {
		tb.Fatal(err)
	}
	r, err := search.NewRegistry(m, "", "MedicationRequest", "MedicationAdministration", "Observation", "DetectedIssue")
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestEveryParameter checks that every parameter the issue lists is known,
// with its R4 type.
func TestEveryParameter(t *testing.T) {
	r := newRegistry(t)
	want := map[string][]string{
		"MedicationRequest": {"authoredon", "category", "code", "date", "encounter", "identifier", "intended-dispenser",
			"intended-performer", "intended-performertype", "intent", "medication", "patient", "priority", "requester", "status", "subject"},
		"MedicationAdministration": {"code", "context", "device", "effective-time", "identifier", "medication", "patient",
			"performer", "reason-given", "reason-not-given", "request", "status", "subject"},
		"Observation": {"based-on", "category", "code", "code-value-concept", "code-value-date", "code-value-quantity",
			"code-value-string", "combo-code", "combo-code-value-concept", "combo-code-value-quantity", "combo-data-absent-reason",
			"combo-value-concept", "combo-value-quantity", "component-code", "component-code-value-concept",
			"component-code-value-quantity", "component-data-absent-reason", "component-value-concept", "component-value-quantity",
			"data-absent-reason", "date", "derived-from", "device", "encounter", "focus", "has-member", "identifier", "method",
			"part-of", "patient", "performer", "specimen", "status", "subject", "value-concept", "value-date", "value-quantity", "value-string"},
	}
	common := []string{"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"}
	for typ, names := range want {
		for _, n := range append(names, common...) {
			if _, ok := r.Lookup(typ, n); !ok {
				t.Errorf("%s: no parameter %s", typ, n)
			}
		}
		if got := len(r.Params(typ)); got != len(names)+len(common) {
			t.Errorf("%s has %d parameters, want %d", typ, got, len(names)+len(common))
		}
	}
}
