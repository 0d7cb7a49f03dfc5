package search_test

import (
	"os"
	"testing"

	"infusion/fhir"
	"infusion/fhir/search"
)

func extract(t *testing.T, r *search.Registry, file string) search.Entries {
	t.Helper()
	data, err := os.ReadFile("../../testdata/resources/valid/" + file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := fhir.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return r.Extract(res.Type, res.Tree)
}

func TestExtract(t *testing.T) {
	r := newRegistry(t)
	e := extract(t, r, "observation-bp-during.json")
	var componentCodes, groups []int
	for _, tok := range e.Tokens {
		if tok.Param == "Observation.component-code" {
			componentCodes = append(componentCodes, tok.Group)
		}
		if tok.Param == "Observation.combo-code" {
			groups = append(groups, tok.Group)
		}
	}
	if len(componentCodes) != 2 || componentCodes[0] == 0 {
		t.Errorf("component codes in groups %v, want two groups above 0", componentCodes)
	}
	if len(groups) < 3 {
		t.Errorf("combo-code groups %v, want the panel's and both components'", groups)
	}
	var q int
	for _, v := range e.Quantities {
		if v.Param == "Observation.component-value-quantity" && v.Code == "mm[Hg]" && v.Group > 0 {
			q++
		}
	}
	if q != 2 {
		t.Errorf("%d component quantities, want 2: %+v", q, e.Quantities)
	}
	var patient, subject bool
	for _, ref := range e.References {
		patient = patient || ref.Param == "Observation.patient" && ref.TargetType == "Patient" && ref.TargetID != ""
		subject = subject || ref.Param == "Observation.subject"
	}
	if !patient || !subject {
		t.Errorf("references %+v", e.References)
	}

	e = extract(t, r, "medicationrequest-ketamine-crps.json")
	var status, code bool
	for _, tok := range e.Tokens {
		status = status || tok.Param == "MedicationRequest.status" && tok.Code == "active" && tok.System == "http://hl7.org/fhir/CodeSystem/medicationrequest-status"
		code = code || tok.Param == "MedicationRequest.code" && tok.Code == "6130"
	}
	if !status || !code {
		t.Errorf("tokens %+v", e.Tokens)
	}
	var authored bool
	for _, d := range e.Dates {
		authored = authored || d.Param == "MedicationRequest.authoredon" && d.Low <= d.High
	}
	if !authored {
		t.Errorf("dates %+v", e.Dates)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{"Café  AU Lait": "cafe au lait", "Ñandú": "nandu", "": ""} {
		if got := search.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
