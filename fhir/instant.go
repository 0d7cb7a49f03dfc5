package fhir

import (
	"fmt"
	"strings"
	"time"
)

// instantLayout is the FHIR instant format the server writes: UTC with
// millisecond precision, e.g. 2026-03-01T09:30:00.000Z.
const instantLayout = "2006-01-02T15:04:05.000Z"

// FormatInstant formats t as a FHIR instant in UTC.
func FormatInstant(t time.Time) string { return t.UTC().Format(instantLayout) }

// Precision is how much of a FHIR date or dateTime was given.
type Precision uint8

// The precisions of FHIR date, dateTime and instant values.
const (
	PrecisionYear Precision = iota + 1
	PrecisionMonth
	PrecisionDay
	PrecisionSecond   // a time to the second
	PrecisionFraction // a time with a fraction of a second: to the millisecond
)

// DateTime is a parsed FHIR date, dateTime or instant: the start of the
// period it names and the precision it was given with.
type DateTime struct {
	Time      time.Time
	Precision Precision
}

// End returns the first instant after the period the value names: a day
// value "2026-03-01" covers [2026-03-01T00:00, 2026-03-02T00:00).
func (d DateTime) End() time.Time {
	switch d.Precision {
	case PrecisionYear:
		return d.Time.AddDate(1, 0, 0)
	case PrecisionMonth:
		return d.Time.AddDate(0, 1, 0)
	case PrecisionDay:
		return d.Time.AddDate(0, 0, 1)
	}
	if d.Precision == PrecisionSecond {
		return d.Time.Add(time.Second)
	}
	return d.Time.Add(time.Millisecond)
}

// ParseDateTime parses a FHIR date, dateTime or instant. A value without a
// time is taken in UTC; a value with a time must carry a zone.
func ParseDateTime(s string) (DateTime, error) {
	layouts := []struct {
		layout string
		p      Precision
	}{
		{"2006", PrecisionYear},
		{"2006-01", PrecisionMonth},
		{"2006-01-02", PrecisionDay},
	}
	if !strings.Contains(s, "T") {
		for _, l := range layouts {
			if len(s) == len(l.layout) {
				t, err := time.Parse(l.layout, s)
				if err != nil {
					return DateTime{}, fmt.Errorf("invalid date %q: %w", s, err)
				}
				return DateTime{Time: t, Precision: l.p}, nil
			}
		}
		return DateTime{}, fmt.Errorf("invalid date %q", s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return DateTime{}, fmt.Errorf("invalid dateTime %q (a time needs seconds and a zone): %w", s, err)
	}
	p := PrecisionSecond
	if i := strings.IndexByte(s, 'T'); strings.IndexByte(s[i:], '.') > 0 {
		p = PrecisionFraction // "…:20.000Z" names a millisecond, not the second
	}
	return DateTime{Time: t.UTC(), Precision: p}, nil
}
