package protocol

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultFormulary(t *testing.T) {
	f, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if f.Version == "" || len(f.Checksum) != 64 {
		t.Errorf("version %q, checksum %q", f.Version, f.Checksum)
	}
	var ids []string
	for _, p := range f.Protocols {
		ids = append(ids, p.ID)
	}
	for _, want := range []string{"ketamine-iv-chronic-pain", "lidocaine-iv-neuropathic", "myers-nutrient-iv", "gabapentinoid-oral"} {
		if !strings.Contains(strings.Join(ids, " "), want) {
			t.Errorf("no protocol %s in %v", want, ids)
		}
	}
}

// TestBadFormulary edits the default file and expects the error to name
// the protocol and the field.
func TestBadFormulary(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown unit", "unit: mg/kg/h\n      low: 0.1", "unit: mg/furlong\n      low: 0.1", `protocol "ketamine-iv-chronic-pain": rate.unit: "mg/furlong" is not a UCUM unit`},
		{"wrong dimension", "unit: mg/kg/h\n      low: 0.1", "unit: mg\n      low: 0.1", `protocol "ketamine-iv-chronic-pain": rate.unit: unit "mg" is mass`},
		{"min above max", "low: 0.1\n      high: 0.5", "low: 0.9\n      high: 0.5", `protocol "ketamine-iv-chronic-pain": rate: low 0.9 > high 0.5`},
		{"unknown field", "doseBasis: per-kg\n    rate:", "doseBasis: per-kg\n    rates: {}\n    rate:", "field rates not found"},
		{"duplicate id", "id: lidocaine-iv-neuropathic", "id: ketamine-iv-chronic-pain", `protocol "ketamine-iv-chronic-pain": id: duplicate id`},
		{"unknown class", "class: lidocaine", "class: opiate", `protocol "lidocaine-iv-neuropathic": drug.class: "opiate"`},
		{"unknown setting", "settings: [clinic]", "settings: [car]", `protocol "ketamine-iv-chronic-pain": settings[0]: "car" is not clinic or home`},
		{"missing source", `      max: 20
      source: "Derived: 0.5 mg/kg/h x 4 h x 10 days (CRPS regimen, Cohen et al., RAPM 2018)"`, "      max: 20", `protocol "ketamine-iv-chronic-pain": courseDose.source: missing`},
		{"two threshold bounds", `above: 180, unit: "mm[Hg]"`, `above: 180, below: 80, unit: "mm[Hg]"`, `stopThresholds[0]: give exactly one of above, atOrAbove or below`},
		{"bad when", "when: after, window: {value: 2, unit: h}, source: \"Wren", "when: later, window: {value: 2, unit: h}, source: \"Wren", `protocol "lidocaine-iv-neuropathic": monitoring[4].when: "later"`},
		{"after rule without a window", "when: after, window: {value: 2, unit: h}, source: \"Wren", "when: after, source: \"Wren", `protocol "lidocaine-iv-neuropathic": monitoring[4].window: a rule after the session says within how long`},
		{"bad session window", "sessionWindow: {value: 2, unit: h}", "sessionWindow: {value: 2, unit: mg}", `settings.sessionWindow.unit: unit "mg" is mass`},
		{"no version", `version: "2026.11.1"`, ``, "version: missing"},
		{"bad tolerance", "tolerancePercent: 10", "tolerancePercent: 150", "settings.tolerancePercent: 150"},
		{"bad code", "code: PREG", "code: PREGNANT", `selection[1].code: "PREGNANT"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := string(defaultFormulary)
			if !strings.Contains(src, tt.old) {
				t.Fatalf("the default formulary has no %q", tt.old)
			}
			path := filepath.Join(t.TempDir(), "formulary.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(src, tt.old, tt.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := Parse(nil); err == nil {
		t.Error("an empty file loaded")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing file: %v", err)
	}
}
