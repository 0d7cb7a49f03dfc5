// Package fhirtest holds helpers shared by the tests of several packages:
// finding the shared FHIR reference data, validating response bodies against
// the R4 schema, and comparing JSON by meaning.
package fhirtest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"infusion/fhir"
	"infusion/fhir/model"
	"infusion/fhir/validate"
)

// SharedDir returns the folder of shared reference data (the one holding
// fhir/fhir.schema.json and fhir/examples), found in $INFUSION_SHARED or as
// a "shared" folder beside the repository. The test is skipped, with the
// reason, when there is none: a fresh clone has no such folder.
func SharedDir(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv("INFUSION_SHARED"); dir != "" {
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		candidate := filepath.Join(dir, "shared")
		if _, err := os.Stat(filepath.Join(candidate, "fhir", "fhir.schema.json")); err == nil {
			return candidate
		}
		candidate = filepath.Join(filepath.Dir(dir), "shared")
		if _, err := os.Stat(filepath.Join(candidate, "fhir", "fhir.schema.json")); err == nil {
			return candidate
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	tb.Skip("the shared reference data (../shared/fhir) is not present; set INFUSION_SHARED to run this test")
	return ""
}

// KnownBadExamples are the official R4 examples that break reference target
// rules (see shared/fhir/README.md), with the element a validator that
// checks target types names: rejecting them is right.
var KnownBadExamples = map[string]string{
	"MedicationRequest-medrx0301.json": "MedicationRequest.dispenseRequest.performer",
	"Observation-clinical-gender.json": "Observation.performer[0]",
}

// EqualJSON reports whether two JSON texts mean the same: the same members
// and values, whatever the order of members and the whitespace. Numbers are
// compared by their text, so 0.50 and 0.5 differ.
func EqualJSON(a, b []byte) (bool, error) {
	va, err := decodeNumbers(a)
	if err != nil {
		return false, err
	}
	vb, err := decodeNumbers(b)
	if err != nil {
		return false, err
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb), nil
}

func decodeNumbers(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

var (
	validatorOnce sync.Once
	validator     *validate.Validator
	validatorErr  error
)

// Validator returns a validator shared by the tests of a package (it takes a
// fraction of a second to build).
func Validator(tb testing.TB) *validate.Validator {
	tb.Helper()
	validatorOnce.Do(func() {
		var m *model.Model
		if m, validatorErr = model.Load(); validatorErr == nil {
			validator, validatorErr = validate.New(m, "MedicationRequest", "MedicationAdministration", "Observation",
				"OperationOutcome", "Bundle", "CapabilityStatement")
		}
	})
	if validatorErr != nil {
		tb.Fatal(validatorErr)
	}
	return validator
}

// CheckResource fails the test unless body is a valid FHIR R4 resource:
// the official schema and the base rules, as for the server's input.
func CheckResource(tb testing.TB, body []byte) {
	tb.Helper()
	r, err := fhir.Parse(body)
	if err != nil {
		tb.Errorf("response is not a FHIR resource: %v\n%s", err, body)
		return
	}
	issues, err := Validator(tb).Validate(r)
	if err != nil {
		tb.Fatal(err)
	}
	for _, is := range issues {
		if is.Severity == fhir.SeverityError || is.Severity == fhir.SeverityFatal {
			tb.Errorf("response %s is not valid R4: %s: %s", r.Type, is.Expression, is.Diagnostics)
		}
	}
}
