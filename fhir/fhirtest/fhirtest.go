// Package fhirtest holds helpers shared by the tests of several packages:
// finding the shared FHIR reference data, validating response bodies against
// the R4 schema, and comparing JSON by meaning.
package fhirtest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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
