package outcomes

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"infusion/mapping"
	"infusion/mapping/ucum"
)

//go:embed mme.yaml
var defaultMME []byte

// MMETable holds the morphine milligram equivalent conversion factors.
type MMETable struct {
	Version        string       `yaml:"version"`
	Title          string       `yaml:"title"`
	Source         string       `yaml:"source"`
	Opioids        []MMEFactor  `yaml:"opioids"`
	Excluded       []MMEExclude `yaml:"excluded"`
	ExcludedRoutes []string     `yaml:"excludedRoutes"`
}

// MMEFactor converts one opioid's daily dose to MME.
type MMEFactor struct {
	Name   string   `yaml:"name"`
	RxNorm []string `yaml:"rxnorm"`
	Factor float64  `yaml:"factor"`
	// DoseUnit is the unit the factor applies to: mg a day unless it says
	// otherwise (ug/h for a fentanyl patch, whose MME a day is ug/h ×
	// factor whatever the number of patches).
	DoseUnit string `yaml:"doseUnit"`
	// Routes, when given, are the only routes (SNOMED CT) the factor is for.
	Routes []string `yaml:"routes"`

	unit ucum.Unit
}

// MMEExclude is an opioid left out of MME.
type MMEExclude struct {
	Name   string   `yaml:"name"`
	RxNorm []string `yaml:"rxnorm"`
	Reason string   `yaml:"reason"`
}

// LoadMME reads an MME table from a YAML file; the embedded CDC 2022 table
// when path is empty.
func LoadMME(path string) (*MMETable, error) {
	data := defaultMME
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("outcomes: reading the MME table: %w", err)
		}
	}
	var t MMETable
	if err := yaml.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("outcomes: the MME table %s: %w", path, err)
	}
	var errs []error
	for i := range t.Opioids {
		o := &t.Opioids[i]
		if o.DoseUnit == "" {
			o.DoseUnit = "mg"
		}
		u, err := ucum.Parse(o.DoseUnit)
		switch {
		case o.Name == "" || len(o.RxNorm) == 0:
			errs = append(errs, fmt.Errorf("opioid %d needs a name and RxNorm codes", i+1))
		case o.Factor <= 0:
			errs = append(errs, fmt.Errorf("%s: the factor must be above 0", o.Name))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: doseUnit: %w", o.Name, err))
		}
		o.unit = u
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("outcomes: the MME table %s: %w", path, err)
	}
	return &t, nil
}

// excludedStatuses are order statuses that say nothing was taken.
var excludedStatuses = []string{"entered-in-error", "cancelled", "draft"}

// DailyMME returns an opioid order's MME a day. counted is false for an
// order MME leaves out (a route or drug the table excludes, a status that
// says nothing was taken); err says why an order that counts cannot be
// converted (an unknown opioid, no dose, a unit that does not convert).
func (t *MMETable) DailyMME(o mapping.Order) (mme float64, counted bool, err error) {
	if slices.Contains(excludedStatuses, o.Status) || slices.Contains(t.ExcludedRoutes, o.Route.Code) {
		return 0, false, nil
	}
	// By the ingredient's RxNorm code; a product code (a tablet, a patch)
	// is found by the ingredient's name in the medication's display.
	codes := []string{o.Drug.Code}
	names := strings.ToLower(o.Drug.Display)
	for _, in := range o.Ingredients {
		codes = append(codes, in.Code)
		names += " " + strings.ToLower(in.Display)
	}
	is := func(rxnorm []string, name string) bool {
		return slices.ContainsFunc(codes, func(c string) bool { return slices.Contains(rxnorm, c) }) || strings.Contains(names, name)
	}
	for _, ex := range t.Excluded {
		if is(ex.RxNorm, ex.Name) {
			return 0, false, nil
		}
	}
	var f *MMEFactor
	for i, op := range t.Opioids {
		if is(op.RxNorm, op.Name) && (len(op.Routes) == 0 || slices.Contains(op.Routes, o.Route.Code)) {
			f = &t.Opioids[i]
			break
		}
	}
	if f == nil {
		return 0, true, fmt.Errorf("%s (%s) has no MME factor for its route", o.Drug.Display, o.Drug.Code)
	}
	dose := o.Dose
	if dose == nil && o.DoseRange != nil {
		dose = o.DoseRange.High
	}
	if dose == nil {
		return 0, true, fmt.Errorf("%s has no dose", o.Drug.Display)
	}
	u, err := ucum.Parse(dose.Unit)
	if err != nil {
		return 0, true, fmt.Errorf("%s: the dose unit %q: %w", o.Drug.Display, dose.Unit, err)
	}
	v, err := u.ConvertTo(dose.Value, f.unit)
	if err != nil {
		return 0, true, fmt.Errorf("%s: a dose in %s does not convert to %s", o.Drug.Display, dose.Unit, f.DoseUnit)
	}
	if f.DoseUnit != "mg" {
		return v * f.Factor, true, nil // a rate: the same every day
	}
	return v * dosesPerDay(o) * f.Factor, true, nil
}

// dosesPerDay is timing.repeat frequency over its period, in days; one a
// day when the order does not say (as the CDC calculator assumes).
func dosesPerDay(o mapping.Order) float64 {
	freq := float64(o.Frequency)
	if freq <= 0 {
		freq = 1
	}
	days := 1.0
	if o.Period > 0 {
		if u, err := ucum.Parse(o.PeriodUnit); err == nil {
			if d, err := u.ConvertTo(o.Period, dayUnit); err == nil && d > 0 {
				days = d
			}
		}
	}
	return freq / days
}

var dayUnit, _ = ucum.Parse("d")

// ActivePeriod is when an opioid order is taken: timing.repeat.boundsPeriod,
// else dispenseRequest.validityPeriod, else authoredOn plus the expected
// supply duration. An end at midnight (a date) covers that whole day; a
// zero end means open-ended. ok is false when no start is known.
func ActivePeriod(o mapping.Order) (start, end time.Time, ok bool) {
	switch {
	case !o.BoundsStart.IsZero():
		start, end = o.BoundsStart, o.BoundsEnd
	case !o.ValidityStart.IsZero():
		start, end = o.ValidityStart, o.ValidityEnd
	case !o.AuthoredOn.IsZero() && o.ExpectedSupplyDays > 0:
		return o.AuthoredOn, o.AuthoredOn.Add(days(o.ExpectedSupplyDays)), true
	default:
		return time.Time{}, time.Time{}, false
	}
	if !end.IsZero() && end.Equal(end.Truncate(24*time.Hour)) {
		end = end.AddDate(0, 0, 1)
	}
	return start, end, true
}

func days(n float64) time.Duration { return time.Duration(n * 24 * float64(time.Hour)) }

// overlapDays is how many days [start, end) (end zero: open) overlaps
// [from, to).
func overlapDays(start, end, from, to time.Time) float64 {
	if end.IsZero() || end.After(to) {
		end = to
	}
	if start.Before(from) {
		start = from
	}
	return math.Max(0, end.Sub(start).Hours()/24)
}
