// Package outcomes computes the outcome figures of infusion courses: who
// was treated, how many sessions were given or stopped, pain response
// (IMMPACT thresholds), side-effect and finding rates, and opioid use as
// morphine milligram equivalents (CDC 2022 factors). It works on model
// rows; the store selects them with a Filter.
package outcomes

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"infusion/fhir"
	"infusion/mapping"
)

// Filter selects infusion courses. Each list keeps a course matching any of
// its values; an empty list keeps all. A course is an order of an infusion
// drug class; its start is its first session's, or its authoredOn when it
// has none.
type Filter struct {
	DrugClasses []mapping.DrugClass
	Medications []Code // the order's medication code
	Conditions  []Code // a reasonCode of the order
	Settings    []mapping.Setting
	// From and To bound the course's start (inclusive); zero when open.
	From, To time.Time
}

// IsZero reports whether f selects every course.
func (f Filter) IsZero() bool {
	return len(f.DrugClasses)+len(f.Medications)+len(f.Conditions)+len(f.Settings) == 0 && f.From.IsZero() && f.To.IsZero()
}

// Code is a system and code; an empty System matches any system.
type Code struct{ System, Code string }

// GroupBy is a dimension the figures are broken down by.
type GroupBy string

// The dimensions.
const (
	ByDrugClass GroupBy = "drug-class"
	ByCondition GroupBy = "condition"
	BySetting   GroupBy = "setting"
	ByMonth     GroupBy = "month"
)

// GroupBys are the dimensions, in the order their columns appear.
var GroupBys = []GroupBy{ByDrugClass, ByCondition, BySetting, ByMonth}

// InfusionClasses are the drug classes whose orders are courses.
var InfusionClasses = []mapping.DrugClass{mapping.ClassKetamine, mapping.ClassLidocaine, mapping.ClassGabapentinoid, mapping.ClassVitamin}

// settingNames are the setting values accepted: the model's, and the FHIR
// categories they come from.
var settingNames = map[string]mapping.Setting{
	"clinic": mapping.SettingClinic, "outpatient": mapping.SettingClinic, "inpatient": mapping.SettingClinic,
	"home": mapping.SettingHome, "community": mapping.SettingHome,
}

// FilterParams are the names of the filter parameters.
var FilterParams = []string{"drug-class", "medication", "condition", "setting", "period"}

// ParseFilter reads the filter parameters (and group-by, when groups is
// true) of a request; params named in skip (such as _format) are left for
// the caller. An unknown parameter or value is an error naming it.
func ParseFilter(params url.Values, groups bool, skip ...string) (Filter, []GroupBy, error) {
	var f Filter
	var by []GroupBy
	for name, values := range params {
		if slices.Contains(skip, name) {
			continue
		}
		var err error
		for _, raw := range values {
			for _, v := range strings.Split(raw, ",") {
				if v = strings.TrimSpace(v); v == "" {
					return f, nil, invalid(name, "%s has an empty value", name)
				}
				switch name {
				case "drug-class":
					c := mapping.DrugClass(v)
					if !slices.Contains(InfusionClasses, c) {
						err = invalid(name, "drug-class %q is not one of %s", v, joinClasses())
					}
					f.DrugClasses = append(f.DrugClasses, c)
				case "medication":
					f.Medications = append(f.Medications, token(v))
				case "condition":
					f.Conditions = append(f.Conditions, token(v))
				case "setting":
					s, ok := settingNames[v]
					if !ok {
						err = invalid(name, "setting %q is not clinic, home, outpatient, inpatient or community", v)
					}
					f.Settings = append(f.Settings, s)
				case "period":
					err = f.bound(v)
				case "group-by":
					g := GroupBy(v)
					switch {
					case !groups:
						err = invalid(name, "group-by is not a parameter here")
					case !slices.Contains(GroupBys, g):
						err = invalid(name, "group-by %q is not one of drug-class, condition, setting, month", v)
					case !slices.Contains(by, g):
						by = append(by, g)
					}
				default:
					err = invalid(name, "%s is not a parameter here (it takes %s)", name, strings.Join(append(FilterParams, "group-by"), ", "))
				}
				if err != nil {
					return f, nil, err
				}
			}
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, nil, invalid("period", "the period ends (%s) before it starts (%s)", f.To.Format(time.DateOnly), f.From.Format(time.DateOnly))
	}
	slices.SortFunc(by, func(a, b GroupBy) int { return slices.Index(GroupBys, a) - slices.Index(GroupBys, b) })
	return f, by, nil
}

// bound reads one period value: geDATE or leDATE (also gt and lt), a date
// of year, month or day precision or a dateTime.
func (f *Filter) bound(v string) error {
	if len(v) < 3 {
		return invalid("period", "period %q is not a prefixed date such as ge2026-01-01", v)
	}
	prefix, date := v[:2], v[2:]
	low, high, ok := dateRange(date)
	if !ok {
		return invalid("period", "period %q: %q is not a FHIR date such as 2026-01-01", v, date)
	}
	switch prefix {
	case "ge":
		f.From = low
	case "gt":
		f.From = high
	case "le":
		f.To = high.Add(-time.Millisecond)
	case "lt":
		f.To = low.Add(-time.Millisecond)
	default:
		return invalid("period", "period %q: the prefix must be ge, gt, le or lt", v)
	}
	return nil
}

// dateRange returns the instants a FHIR date or dateTime covers: [low, high).
func dateRange(s string) (low, high time.Time, ok bool) {
	for _, p := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{time.DateOnly, func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
	} {
		if t, err := time.Parse(p.layout, s); err == nil && len(s) == len(p.layout) {
			return t, p.next(t), true
		}
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	return t.UTC(), t.UTC().Add(time.Millisecond), true
}

// token reads system|code or code.
func token(v string) Code {
	if system, code, ok := strings.Cut(v, "|"); ok {
		return Code{System: system, Code: code}
	}
	return Code{Code: v}
}

func joinClasses() string {
	var names []string
	for _, c := range InfusionClasses {
		names = append(names, string(c))
	}
	return strings.Join(names, ", ")
}

func invalid(param, format string, args ...any) error {
	return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, param, format, args...)
}
