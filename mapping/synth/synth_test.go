package synth_test

import (
	"bytes"
	"testing"

	"infusion/fhir/fhirtest"
	"infusion/mapping/synth"
)

// TestValidAndDeterministic checks that every generated resource is valid
// R4 and that the same seed gives the same bytes.
func TestValidAndDeterministic(t *testing.T) {
	g := synth.New(synth.Config{Seed: 7})
	again := synth.New(synth.Config{Seed: 7})
	other := synth.New(synth.Config{Seed: 8})
	types := map[string]int{}
	differs := false
	for i := range 30 {
		a, b, c := g.Patient(i), again.Patient(i), other.Patient(i)
		if len(a) != len(b) {
			t.Fatalf("patient %d: %d then %d resources", i, len(a), len(b))
		}
		for j := range a {
			if !bytes.Equal(a[j].JSON, b[j].JSON) {
				t.Fatalf("patient %d resource %d differs between runs", i, j)
			}
			fhirtest.CheckResource(t, a[j].JSON)
			types[a[j].Type]++
		}
		differs = differs || len(a) != len(c) || !bytes.Equal(a[0].JSON, c[0].JSON)
	}
	if !differs {
		t.Error("another seed gave the same data")
	}
	for _, typ := range []string{"MedicationRequest", "MedicationAdministration", "Observation"} {
		if types[typ] == 0 {
			t.Errorf("no %s", typ)
		}
	}
	t.Logf("30 patients: %v", types)
}
