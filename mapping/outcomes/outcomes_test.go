package outcomes

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"infusion/mapping"
)

func TestQuartiles(t *testing.T) {
	for _, tc := range []struct {
		in          []float64
		q1, med, q3 float64
		ok          bool
	}{
		{nil, 0, 0, 0, false},
		{[]float64{5}, 5, 5, 5, true},
		{[]float64{8, 6}, 6.5, 7, 7.5, true},
		{[]float64{4, 1, 3, 2}, 1.75, 2.5, 3.25, true},
		{[]float64{1, 2, 3, 4, 5}, 2, 3, 4, true},
	} {
		q1, med, q3, ok := Quartiles(tc.in)
		if q1 != tc.q1 || med != tc.med || q3 != tc.q3 || ok != tc.ok {
			t.Errorf("Quartiles(%v) = %v %v %v %v", tc.in, q1, med, q3, ok)
		}
	}
}

func TestDailyMME(t *testing.T) {
	table, err := LoadMME("")
	if err != nil {
		t.Fatal(err)
	}
	oral := mapping.Coding{System: mapping.SystemSNOMED, Code: "26643006"}
	order := func(code string, dose float64, unit string, freq int, period float64, periodUnit string, route mapping.Coding) mapping.Order {
		return mapping.Order{Status: "active", Drug: mapping.Drug{Coding: mapping.Coding{System: mapping.SystemRxNorm, Code: code, Display: code}},
			Route: route, Dose: &mapping.Quantity{Value: dose, Unit: unit}, Frequency: freq, Period: period, PeriodUnit: periodUnit}
	}
	for _, tc := range []struct {
		name    string
		o       mapping.Order
		mme     float64
		counted bool
		err     string
	}{
		{"oxycodone 10 mg 4 a day", order("7804", 10, "mg", 4, 1, "d", oral), 60, true, ""},
		{"morphine 15 mg every 12 h", order("7052", 15, "mg", 1, 12, "h", oral), 30, true, ""},
		{"methadone 10 mg twice a day: one factor, 4.7", order("6813", 10, "mg", 2, 1, "d", oral), 94, true, ""},
		{"tramadol 50 mg, no timing: once a day", order("10689", 50, "mg", 0, 0, "", oral), 10, true, ""},
		{"hydromorphone 2000 ug", order("3423", 2000, "ug", 1, 1, "d", oral), 10, true, ""},
		{"fentanyl patch 25 ug/h", order("4337", 25, "ug/h", 1, 3, "d", mapping.Coding{Code: "45890007"}), 60, true, ""},
		{"fentanyl, not a patch", order("4337", 100, "ug", 1, 1, "d", mapping.Coding{Code: "54471007"}), 0, true, "no MME factor"},
		{"buprenorphine left out", order("1819", 8, "mg", 1, 1, "d", oral), 0, false, ""},
		{"IV morphine left out", order("7052", 5, "mg", 4, 1, "d", mapping.Coding{Code: "47625008"}), 0, false, ""},
		{"cancelled", func() mapping.Order { o := order("7052", 5, "mg", 4, 1, "d", oral); o.Status = "cancelled"; return o }(), 0, false, ""},
		{"no dose", func() mapping.Order { o := order("7052", 5, "mg", 4, 1, "d", oral); o.Dose = nil; return o }(), 0, true, "no dose"},
		{"a dose in mL", order("7052", 5, "mL", 4, 1, "d", oral), 0, true, "does not convert"},
		{"not an opioid of the table", order("1841", 5, "mg", 4, 1, "d", oral), 0, true, "no MME factor"},
		{"a product code, by its ingredient's name", func() mapping.Order {
			o := order("1049621", 5, "mg", 4, 1, "d", oral)
			o.Drug.Display = "oxycodone hydrochloride 5 MG Oral Tablet"
			return o
		}(), 30, true, ""},
		{"a product by its ingredient's code", func() mapping.Order {
			o := order("", 15, "mg", 2, 1, "d", oral)
			o.Ingredients = []mapping.Ingredient{{Coding: mapping.Coding{System: mapping.SystemRxNorm, Code: "7052"}}}
			return o
		}(), 30, true, ""},
		{"a buprenorphine product left out", func() mapping.Order {
			o := order("1010600", 8, "mg", 1, 1, "d", oral)
			o.Drug.Display = "buprenorphine 8 MG Sublingual Tablet"
			return o
		}(), 0, false, ""},
	} {
		mme, counted, err := table.DailyMME(tc.o)
		if mme != tc.mme || counted != tc.counted || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v %v %v", tc.name, mme, counted, err)
		}
	}
}

func TestActivePeriod(t *testing.T) {
	day := func(s string) time.Time { v, _ := time.Parse(time.DateOnly, s); return v }
	for _, tc := range []struct {
		name       string
		o          mapping.Order
		start, end time.Time
		ok         bool
	}{
		{"bounds, end a date: the whole day", mapping.Order{BoundsStart: day("2026-01-01"), BoundsEnd: day("2026-01-31"),
			ValidityStart: day("2025-01-01")}, day("2026-01-01"), day("2026-02-01"), true},
		{"validity", mapping.Order{ValidityStart: day("2026-01-01"), ValidityEnd: day("2026-01-10")}, day("2026-01-01"), day("2026-01-11"), true},
		{"supply", mapping.Order{AuthoredOn: day("2026-01-01").Add(9 * time.Hour), ExpectedSupplyDays: 30},
			day("2026-01-01").Add(9 * time.Hour), day("2026-01-31").Add(9 * time.Hour), true},
		{"open-ended", mapping.Order{BoundsStart: day("2026-01-01")}, day("2026-01-01"), time.Time{}, true},
		{"nothing", mapping.Order{AuthoredOn: day("2026-01-01")}, time.Time{}, time.Time{}, false},
	} {
		start, end, ok := ActivePeriod(tc.o)
		if !start.Equal(tc.start) || !end.Equal(tc.end) || ok != tc.ok {
			t.Errorf("%s: %v %v %v", tc.name, start, end, ok)
		}
	}
}

func TestParseFilter(t *testing.T) {
	f, by, err := ParseFilter(url.Values{"drug-class": {"ketamine,lidocaine"}, "condition": {"http://snomed.info/sct|128200000", "203082005"},
		"setting": {"community"}, "period": {"ge2026-01", "le2026-06-30"}, "group-by": {"month,drug-class"}, "_format": {"csv"}}, true, "_format")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.DrugClasses) != 2 || f.Conditions[0] != (Code{"http://snomed.info/sct", "128200000"}) || f.Conditions[1] != (Code{"", "203082005"}) ||
		f.Settings[0] != mapping.SettingHome || !f.From.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		!f.To.Equal(time.Date(2026, 6, 30, 23, 59, 59, 999e6, time.UTC)) || len(by) != 2 || by[0] != ByDrugClass {
		t.Errorf("%+v %v", f, by)
	}
	for _, bad := range []url.Values{{"group-by": {"drug-class"}}, {"x": {"1"}}, {"period": {"eq2026"}}, {"period": {"ge2026-02-30"}}} {
		if _, _, err := ParseFilter(bad, false); err == nil {
			t.Errorf("ParseFilter(%v) accepted", bad)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"period=ge2026-01-01&period=le2026-06-30", "condition=a|b&group-by=month", "drug-class=ketamine,", "period=gt2026-01-01T10:00:00+02:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		filter, _, err := ParseFilter(params, true)
		if err == nil && !filter.From.IsZero() && !filter.To.IsZero() && filter.To.Before(filter.From) {
			t.Errorf("%q: a period ending before it starts was accepted", query)
		}
	})
}

func TestLoadMMEErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not YAML":        "opioids: [",
		"no factor":       "opioids:\n  - {name: morphine, rxnorm: [\"7052\"]}\n",
		"no codes":        "opioids:\n  - {name: morphine, factor: 1}\n",
		"bad dose unit":   "opioids:\n  - {name: fentanyl, rxnorm: [\"4337\"], factor: 2.4, doseUnit: furlong/h}\n",
		"negative factor": "opioids:\n  - {name: morphine, rxnorm: [\"7052\"], factor: -1}\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadMME(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := LoadMME(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing file loaded")
	}
}

// TestSummarizeCourseStart: a course starts at its earliest session start
// (a session without one is passed over, as the period filter's min()
// does), or at the order's authoredOn when no session has one.
func TestSummarizeCourseStart(t *testing.T) {
	authored := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	first := time.Date(2026, 2, 3, 9, 0, 0, 0, time.UTC)
	opts, err := Options{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		sessions []mapping.Administration
		want     time.Time
	}{
		{"no sessions", nil, authored},
		{"a session without a start", []mapping.Administration{{ID: "a", Status: "not-done"}}, authored},
		{"one without a start first", []mapping.Administration{{ID: "a", Status: "not-done"},
			{ID: "b", Status: "completed", Start: first}, {ID: "c", Status: "completed", Start: first.AddDate(0, 0, 7)}}, first},
	} {
		rec := Record{Patient: "Patient/p", Courses: []Course{{Order: mapping.Order{ID: "o", AuthoredOn: authored}, Sessions: tc.sessions}}}
		if got := Summarize(rec, opts)[0].Start; !got.Equal(tc.want) {
			t.Errorf("%s: start %v, want %v", tc.name, got, tc.want)
		}
	}
}
