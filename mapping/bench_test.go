package mapping_test

import (
	"os"
	"testing"

	"infusion/mapping"
)

// BenchmarkMap maps an infusion order to the model.
func BenchmarkMap(b *testing.B) {
	body, err := os.ReadFile("../testdata/resources/valid/medicationrequest-ketamine-crps.json")
	if err != nil {
		b.Fatal(err)
	}
	m := mapping.NewMapper(mapping.DefaultClassifier())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Map("MedicationRequest", "x", body); err != nil {
			b.Fatal(err)
		}
	}
}
