package ucum

import (
	"math"
	"testing"
)

func TestConvert(t *testing.T) {
	tests := []struct {
		value    float64
		from, to string
		want     float64
	}{
		{1, "g", "mg", 1000},
		{250, "ug", "mg", 0.25},
		{250, "mcg", "mg", 0.25},
		{1, "mg/kg/h", "mg/(kg.h)", 1},
		{1, "mg/kg/h", "ug/kg/min", 1000.0 / 60},
		{60, "mg/h", "mg/min", 1},
		{100, "mL/h", "L/d", 2.4},
		{100, "ml/hr", "mL/h", 100},
		{2, "h", "min", 120},
		{1, "wk", "d", 7},
		{5, "ug/mL", "mg/L", 5},
		{9.9, "mEq", "meq", 9.9},
		{120, "mm[Hg]", "mmHg", 120},
		{7, "{score}", "1", 7},
		{96, "%", "1", 0.96},
		{1, "/min", "/h", 60},
		{1, "cm2", "m2", 1e-4},
		{1, "s-1", "/min", 60},
		{3, "[iU]/kg", "[IU]/kg", 3},
	}
	for _, tt := range tests {
		got, err := Convert(tt.value, tt.from, tt.to)
		if err != nil {
			t.Errorf("%g %s → %s: %v", tt.value, tt.from, tt.to, err)
			continue
		}
		if math.Abs(got-tt.want) > 1e-9*math.Max(1, math.Abs(tt.want)) {
			t.Errorf("%g %s → %s = %g, want %g", tt.value, tt.from, tt.to, got, tt.want)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct{ from, to string }{
		{"mg", "mL"},
		{"mg/kg/h", "mg/h"},
		{"mg", "furlong"},
		{"", "mg"},
		{"mg/(kg.h", "mg"},
		{"[degF]", "Cel"},
		{"mg//h", "mg/h"},
		{"mg/", "mg"},
	}
	for _, tt := range tests {
		if got, err := Convert(1, tt.from, tt.to); err == nil {
			t.Errorf("%s → %s = %g, want an error", tt.from, tt.to, got)
		}
	}
}

func TestDerived(t *testing.T) {
	rate, _ := Parse("mL/h")
	conc, _ := Parse("mg/mL")
	weight, _ := Parse("kg")
	target, _ := Parse("mg/kg/h")
	got, err := rate.Times(conc).Per(weight).ConvertTo(100*10.0/70, target)
	if err != nil || math.Abs(got-1000.0/70) > 1e-9 {
		t.Fatalf("got %g, %v", got, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"mg/(kg.h)", "ug/kg/min", "{score}", "mm[Hg]", "10*3/uL", "s-1", "(("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err == nil {
			_ = u.Dimension()
		}
	})
}
