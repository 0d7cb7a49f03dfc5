package validate_test

import (
	"os"
	"testing"

	"infusion/fhir"
	"infusion/fhir/fhirtest"
	"infusion/fhir/model"
	"infusion/fhir/validate"
)

// BenchmarkNew measures start-up: loading the element model and the schema
// and compiling the definitions of the three stored types.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		m, err := model.Load()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := validate.New(m, "MedicationRequest", "MedicationAdministration", "Observation"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate parses and validates an infusion order (schema, rules,
// invariants).
func BenchmarkValidate(b *testing.B) {
	data, err := os.ReadFile("../../testdata/resources/valid/medicationrequest-ketamine-crps.json")
	if err != nil {
		b.Fatal(err)
	}
	v := fhirtest.Validator(b)
	b.ReportAllocs()
	for b.Loop() {
		r, err := fhir.Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if issues, err := v.Validate(r); err != nil || fhir.HasErrors(issues) {
			b.Fatal(err, issues)
		}
	}
}
