package validate_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"infusion/fhir"
	"infusion/fhir/fhirtest"
	"infusion/mapping"
)

// FuzzValidate feeds arbitrary bytes to the parser and the validator: they
// must never panic, a rejection must carry issues, and whatever is accepted
// must survive the server's encoding and parse again to the same meaning.
func FuzzValidate(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/resources/*/*.json")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	// Primitive values from google/fhir's valid/invalid lists, placed in an
	// Observation's effectiveDateTime and valueString, when present.
	if dir := os.Getenv("INFUSION_SHARED"); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "fhir", "invalid", "google-fhir", "primitives", "*.ndjson"))
		for _, file := range files {
			data, _ := os.ReadFile(file)
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				f.Add([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":` + sc.Text() + `}`))
			}
		}
	}
	f.Add([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":0.50}}`))
	f.Add([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":2}`))
	f.Add([]byte(`{"resourceType":"Observation","_status":{"extension":[{"url":"http://x","valueString":"y"}]},"code":{}}`))
	v := fhirtest.Validator(f)
	mapper := mapping.NewMapper(mapping.DefaultClassifier())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := fhir.Parse(data)
		if err != nil {
			if fe, ok := err.(*fhir.Error); !ok || len(fe.Issues) == 0 || fe.Kind != fhir.KindInvalid {
				t.Fatalf("a parse error without issues: %#v", err)
			}
			return
		}
		issues, err := v.Validate(r)
		if err != nil {
			t.Fatalf("validator fault: %v", err)
		}
		if fhir.HasErrors(issues) {
			return
		}
		// An accepted resource must map to the model: a mapping failure
		// after validation would be a 500.
		if _, err := mapper.Map(r.Type, "x", r.Raw()); err != nil {
			t.Fatalf("accepted but does not map: %v", err)
		}
		p, err := r.Prepare("x")
		if err != nil {
			t.Fatalf("accepted but cannot be prepared: %v", err)
		}
		stored := p.Bytes(1, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		again, err := fhir.Parse(stored)
		if err != nil {
			t.Fatalf("stored JSON does not parse: %v\n%s", err, stored)
		}
		if issues, _ := v.Validate(again); fhir.HasErrors(issues) {
			t.Fatalf("stored JSON is not valid: %v\n%s", issues, stored)
		}
	})
}
