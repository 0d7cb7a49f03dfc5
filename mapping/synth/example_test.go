package synth_test

import (
	"fmt"

	"infusion/mapping/synth"
)

// Generate two patients and count their resources by type.
func Example() {
	g := synth.New(synth.Config{Patients: 2, Seed: 1})
	for i := range g.Patients() {
		counts := map[string]int{}
		for _, r := range g.Patient(i) {
			counts[r.Type]++
		}
		fmt.Println(synth.PatientID(i), counts)
	}
	// Output:
	// pat-000000 map[MedicationAdministration:5 MedicationRequest:3 Observation:34]
	// pat-000001 map[MedicationAdministration:5 MedicationRequest:3 Observation:30]
}
