package validate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"infusion/fhir"
	"infusion/fhir/fhirtest"
)

// check parses and validates data, returning every issue as an error.
func check(tb testing.TB, data []byte) []fhir.Issue {
	tb.Helper()
	r, err := fhir.Parse(data)
	if err != nil {
		if fe, ok := err.(*fhir.Error); ok {
			return fe.Issues
		}
		tb.Fatal(err)
	}
	issues, err := fhirtest.Validator(tb).Validate(r)
	if err != nil {
		tb.Fatal(err)
	}
	return issues
}

func TestOfficialExamples(t *testing.T) {
	dir := filepath.Join(fhirtest.SharedDir(t), "fhir", "examples")
	for _, typ := range []string{"MedicationRequest", "MedicationAdministration", "Observation"} {
		files, _ := filepath.Glob(filepath.Join(dir, typ, "*.json"))
		more, _ := filepath.Glob(filepath.Join(dir, "from-bundles", typ, "*.json"))
		for _, f := range append(files, more...) {
			t.Run(filepath.Base(f), func(t *testing.T) {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				issues := check(t, data)
				if want, bad := fhirtest.KnownBadExamples[filepath.Base(f)]; bad {
					if len(issues) == 0 || issues[0].Expression[0] != want {
						t.Errorf("want a rejection naming %s, got %v", want, issues)
					}
					return
				}
				for _, is := range issues {
					t.Errorf("%s: %s (%s)", is.Expression, is.Diagnostics, is.Code)
				}
			})
		}
	}
}

type manifestCase struct {
	ID           string `json:"id"`
	LocalFile    string `json:"local_file"`
	Format       string `json:"format"`
	ResourceType string `json:"resourceType"`
	Expect       string `json:"expect"`
}

// rejectedControls are "accept" controls of the manifest that this server
// rejects on purpose, with the reason.
var rejectedControls = map[string]string{
	// Converted from a protobuf where an empty Period message is present;
	// in JSON, "effectivePeriod": {} breaks ele-1.
	"google-validation:medication_administration_valid_oneof_reference": "MedicationAdministration.effectivePeriod",
}

func TestInvalidManifest(t *testing.T) {
	dir := filepath.Join(fhirtest.SharedDir(t), "fhir", "invalid")
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Cases []manifestCase }
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Cases {
		if c.Format != "json" || strings.HasPrefix(c.Expect, "reject-only-with") {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(dir, c.LocalFile))
			if err != nil {
				t.Fatal(err)
			}
			issues := check(t, body)
			if want, ok := rejectedControls[c.ID]; ok {
				if len(issues) != 1 || issues[0].Expression[0] != want {
					t.Errorf("want one issue at %s, got %v", want, issues)
				}
				return
			}
			switch c.Expect {
			case "accept":
				for _, is := range issues {
					t.Errorf("rejected a valid control: %s: %s", is.Expression, is.Diagnostics)
				}
			case "reject":
				if !fhir.HasErrors(issues) {
					t.Errorf("accepted an invalid resource")
				}
				var lines []string
				for _, is := range issues {
					lines = append(lines, strings.Join(is.Expression, ",")+": "+is.Diagnostics)
				}
				sort.Strings(lines)
				t.Logf("issues:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}
