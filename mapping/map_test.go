package mapping_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"infusion/fhir/fhirtest"
	"infusion/mapping"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// typeOf names the resource type of an example file from its name.
func typeOf(file string) string {
	switch {
	case strings.HasPrefix(file, "medicationrequest"):
		return "MedicationRequest"
	case strings.HasPrefix(file, "medicationadministration"):
		return "MedicationAdministration"
	}
	return "Observation"
}

// TestMapGolden maps every valid infusion example and compares the model
// rows with testdata/golden/mapping (go test ./mapping -update rewrites them).
func TestMapGolden(t *testing.T) {
	files, err := filepath.Glob("../testdata/resources/valid/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	m := mapping.NewMapper(mapping.DefaultClassifier())
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := m.Map(typeOf(name), "example", body)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(rows, "", "  ")
			golden := filepath.Join("../testdata/golden/mapping", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./mapping -update)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), got) {
				t.Errorf("rows differ from %s (-want +got):\n%s", golden, cmp.Diff(string(want), string(got)))
			}
		})
	}
}

func TestMapFields(t *testing.T) {
	m := mapping.NewMapper(mapping.DefaultClassifier())
	read := func(t *testing.T, name string) mapping.Rows {
		t.Helper()
		body, err := os.ReadFile("../testdata/resources/valid/" + name)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := m.Map(typeOf(name), "x", body)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	t.Run("ketamine order", func(t *testing.T) {
		o := read(t, "medicationrequest-ketamine-crps.json").Order
		if o.Drug.Class != mapping.ClassKetamine || o.Drug.Code != "6130" {
			t.Errorf("drug = %+v", o.Drug)
		}
		if o.Rate == nil || o.Rate.Value != 0.5 || o.Rate.Unit != "mg/kg/h" || !o.WeightBased {
			t.Errorf("rate = %+v, weight based %v", o.Rate, o.WeightBased)
		}
		if o.DurationMinutes != 240 || o.Sessions != 5 || o.IntervalHours != 24 || o.Setting != mapping.SettingClinic {
			t.Errorf("duration %v sessions %v interval %v setting %q", o.DurationMinutes, o.Sessions, o.IntervalHours, o.Setting)
		}
		if o.Patient != "Patient/pat-crps-1" || o.Status != "active" || o.Intent != "order" {
			t.Errorf("order = %+v", o)
		}
		if len(o.Indications) == 0 || o.Indications[0].Code != "128200000" {
			t.Errorf("indications = %+v", o.Indications)
		}
	})
	t.Run("contained medication at home", func(t *testing.T) {
		o := read(t, "medicationrequest-myers-home.json").Order
		if o.Drug.Class != mapping.ClassVitamin || o.Setting != mapping.SettingHome || len(o.Ingredients) < 2 {
			t.Errorf("order = %+v", o)
		}
		if o.Rate == nil || o.Rate.Value != 100 || o.Rate.Unit != "mL/h" {
			t.Errorf("rate = %+v", o.Rate)
		}
		if o.Drug.Strength == nil {
			t.Errorf("no strength on %+v", o.Drug)
		}
	})
	t.Run("stopped administration", func(t *testing.T) {
		a := read(t, "medicationadministration-ketamine-stopped-nausea.json").Administration
		if a.Status != "stopped" || len(a.StatusReason) == 0 || a.StatusReason[0].Code != "422587007" {
			t.Errorf("administration = %+v", a)
		}
		if a.End.Sub(a.Start) != 90*time.Minute || a.Order != "ketamine-order-1" {
			t.Errorf("start %v end %v order %q", a.Start, a.End, a.Order)
		}
	})
	t.Run("blood pressure panel", func(t *testing.T) {
		as := read(t, "observation-bp-during.json").Assessments
		if len(as) != 3 {
			t.Fatalf("want the panel and two components, got %d", len(as))
		}
		for i, a := range as {
			if a.Kind != mapping.KindVitalSign || a.Index != i || a.Administration == "" {
				t.Errorf("assessment %d = %+v", i, a)
			}
		}
		if as[1].Value == nil || as[1].Value.Unit != "mm[Hg]" {
			t.Errorf("systolic = %+v", as[1].Value)
		}
	})
	t.Run("side effect", func(t *testing.T) {
		a := read(t, "observation-nausea.json").Assessments[0]
		if a.Kind != mapping.KindSideEffect || a.ValueCode.Code != "255604002" {
			t.Errorf("assessment = %+v", a)
		}
	})
	t.Run("pain", func(t *testing.T) {
		a := read(t, "observation-pain-before.json").Assessments[0]
		if a.Kind != mapping.KindPain || a.Value == nil || a.Value.Value != 7 {
			t.Errorf("assessment = %+v", a)
		}
	})
}

// TestMapOfficialExamples maps every official example of the three types:
// none may fail.
func TestMapOfficialExamples(t *testing.T) {
	dir := filepath.Join(fhirtest.SharedDir(t), "fhir", "examples")
	m := mapping.NewMapper(mapping.DefaultClassifier())
	for _, typ := range []string{"MedicationRequest", "MedicationAdministration", "Observation"} {
		files, _ := filepath.Glob(filepath.Join(dir, typ, "*.json"))
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Map(typ, "x", body); err != nil {
				t.Errorf("%s: %v", filepath.Base(f), err)
			}
		}
	}
}
