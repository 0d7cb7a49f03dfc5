// Package protocol holds the infusion protocol formulary — drugs, the
// indications they cover, routes, settings, dose and rate ranges with hard
// limits, course shape, monitoring and stop thresholds, each figure with its
// source — and the rules that check orders, administrations and observations
// of the infusion model against it. The formulary is data: a YAML file the
// operator can replace. The rules are pure Go; the facts they need beyond
// the resource being written (the patient's weight, the order of an
// administration …) come through the Facts interface.
//
// The findings are decision support for clinicians, not medical advice.
package protocol

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"infusion/mapping"
	"infusion/mapping/ucum"
)

//go:embed formulary.yaml
var defaultFormulary []byte

// Formulary is the set of protocols the checks use.
type Formulary struct {
	Version   string     `yaml:"version" json:"version"`
	Title     string     `yaml:"title" json:"title"`
	Settings  Settings   `yaml:"settings" json:"settings"`
	Protocols []Protocol `yaml:"protocols" json:"protocols"`
	// Checksum is the SHA-256 of the file, hex.
	Checksum string `yaml:"-" json:"checksum"`
}

// Settings are the formulary-wide parameters of the checks.
type Settings struct {
	// TolerancePercent is how far an administration's dose or rate may
	// stray from the order's before it is a deviation.
	TolerancePercent float64 `yaml:"tolerancePercent" json:"tolerancePercent"`
	// WeightWindow is how old the latest body weight may be, before the
	// order or administration, for a weight-based check.
	WeightWindow Amount `yaml:"weightWindow" json:"weightWindow"`
	// DuringWindow is how long after an administration's start, when it has
	// no end, an observation counts as taken during it.
	DuringWindow Amount `yaml:"duringWindow" json:"duringWindow"`
	// SessionWindow is how long before a session's start and after its end
	// a pain score or side effect belongs to the session, in a treatment
	// course.
	SessionWindow Amount `yaml:"sessionWindow" json:"sessionWindow"`
	// IntravenousRoutes are the route codes of an infusion (SNOMED CT).
	IntravenousRoutes []Code `yaml:"intravenousRoutes" json:"intravenousRoutes"`
}

// Amount is a value with a UCUM unit.
type Amount struct {
	Value float64 `yaml:"value" json:"value"`
	Unit  string  `yaml:"unit" json:"unit"`
}

// Code is a coding; the system defaults by where it is used (SNOMED CT for
// indications and routes, RxNorm for drugs, LOINC for observations).
type Code struct {
	System  string `yaml:"system,omitempty" json:"system"`
	Code    string `yaml:"code" json:"code"`
	Display string `yaml:"display,omitempty" json:"display,omitempty"`
}

// Protocol is one infusion protocol.
type Protocol struct {
	ID      string `yaml:"id" json:"id"`
	Version string `yaml:"version" json:"version"`
	Title   string `yaml:"title" json:"title"`
	// Reference is the URL of the protocol's main source (a guideline or
	// label); findings cite it.
	Reference   string   `yaml:"reference" json:"reference"`
	Drug        Drug     `yaml:"drug" json:"drug"`
	Indications []Code   `yaml:"indications" json:"indications"`
	Routes      []Code   `yaml:"routes" json:"routes"`
	Settings    []string `yaml:"settings" json:"settings"` // clinic, home
	// NotForInfusion flags an intravenous order of a drug that has no
	// intravenous product.
	NotForInfusion *Review `yaml:"notForInfusion,omitempty" json:"notForInfusion,omitempty"`
	// DoseBasis is per-kg or fixed.
	DoseBasis       string            `yaml:"doseBasis" json:"doseBasis"`
	Rate            *Range            `yaml:"rate,omitempty" json:"rate,omitempty"`
	SessionDose     *Range            `yaml:"sessionDose,omitempty" json:"sessionDose,omitempty"`
	CourseDose      *Range            `yaml:"courseDose,omitempty" json:"courseDose,omitempty"`
	SessionDuration *Range            `yaml:"sessionDuration,omitempty" json:"sessionDuration,omitempty"`
	Course          *Course           `yaml:"course,omitempty" json:"course,omitempty"`
	Ingredients     []IngredientLimit `yaml:"ingredients,omitempty" json:"ingredients,omitempty"`
	Monitoring      []Monitor         `yaml:"monitoring,omitempty" json:"monitoring,omitempty"`
	StopThresholds  []Threshold       `yaml:"stopThresholds,omitempty" json:"stopThresholds,omitempty"`
	Selection       []Selection       `yaml:"selection,omitempty" json:"selection,omitempty"`
}

// Drug says which medications a protocol covers.
type Drug struct {
	Class   mapping.DrugClass `yaml:"class" json:"class"`
	Display string            `yaml:"display" json:"display"`
	RxNorm  []Code            `yaml:"rxnorm" json:"rxnorm"` // ingredient codes
}

// Review is a finding a protocol raises on sight.
type Review struct {
	Severity Severity `yaml:"severity" json:"severity"`
	Detail   string   `yaml:"detail" json:"detail"`
	Source   string   `yaml:"source" json:"source"`
}

// Range is a typical range (low–high: outside is a warning) and hard limits
// (min, max: beyond is an error) in one unit, with the source of the
// figures.
type Range struct {
	Unit   string   `yaml:"unit" json:"unit"`
	Low    *float64 `yaml:"low,omitempty" json:"low,omitempty"`
	High   *float64 `yaml:"high,omitempty" json:"high,omitempty"`
	Min    *float64 `yaml:"min,omitempty" json:"min,omitempty"`
	Max    *float64 `yaml:"max,omitempty" json:"max,omitempty"`
	Source string   `yaml:"source" json:"source"`
}

// Course is the shape of a course: how many sessions, how far apart.
type Course struct {
	Sessions    *Range  `yaml:"sessions,omitempty" json:"sessions,omitempty"`       // unit "1"
	MinInterval *Amount `yaml:"minInterval,omitempty" json:"minInterval,omitempty"` // between session starts
	Source      string  `yaml:"source" json:"source"`
}

// IngredientLimit limits one ingredient of a mixture, e.g. magnesium's
// infusion rate in a nutrient infusion.
type IngredientLimit struct {
	Ingredient  Code     `yaml:"ingredient" json:"ingredient"` // RxNorm
	Names       []string `yaml:"names,omitempty" json:"names,omitempty"`
	Rate        *Range   `yaml:"rate,omitempty" json:"rate,omitempty"`
	SessionDose *Range   `yaml:"sessionDose,omitempty" json:"sessionDose,omitempty"`
}

// Monitor is an observation a session requires.
type Monitor struct {
	Name  string  `yaml:"name" json:"name"`
	Codes []Code  `yaml:"codes" json:"codes"` // LOINC; any of them meets it
	When  string  `yaml:"when" json:"when"`   // before, during, after
	Every *Amount `yaml:"every,omitempty" json:"every,omitempty"`
	// Window is how long before the start (before) or after the end
	// (after) the observation may be taken.
	Window *Amount `yaml:"window,omitempty" json:"window,omitempty"`
	Source string  `yaml:"source" json:"source"`
}

// Threshold is a value beyond which an infusion should stop.
type Threshold struct {
	Name  string `yaml:"name" json:"name"`
	Codes []Code `yaml:"codes" json:"codes"` // LOINC
	// Exactly one of Above (>), AtOrAbove (≥) and Below (<).
	Above     *float64 `yaml:"above,omitempty" json:"above,omitempty"`
	AtOrAbove *float64 `yaml:"atOrAbove,omitempty" json:"atOrAbove,omitempty"`
	Below     *float64 `yaml:"below,omitempty" json:"below,omitempty"`
	Unit      string   `yaml:"unit" json:"unit"`
	Severity  Severity `yaml:"severity" json:"severity"`
	Source    string   `yaml:"source" json:"source"`
}

// Selection is a patient-selection rule checked at the order: a
// contraindication a stored observation can show, or an observation that
// must exist.
type Selection struct {
	Name  string `yaml:"name" json:"name"`
	Codes []Code `yaml:"codes" json:"codes"` // LOINC
	// The latest reading within Within before the order is checked:
	Above      *float64 `yaml:"above,omitempty" json:"above,omitempty"`
	Below      *float64 `yaml:"below,omitempty" json:"below,omitempty"`
	Unit       string   `yaml:"unit,omitempty" json:"unit,omitempty"`
	ValueCodes []Code   `yaml:"valueCodes,omitempty" json:"valueCodes,omitempty"` // coded answers that contraindicate
	// Required: a reading must exist within Within before the order.
	Required bool   `yaml:"required,omitempty" json:"required,omitempty"`
	Within   Amount `yaml:"within" json:"within"`
	// Code is the v3 ActCode detected-issue code of the finding (COND,
	// PREG …); none when no code fits.
	Code     string   `yaml:"code,omitempty" json:"code,omitempty"`
	Severity Severity `yaml:"severity" json:"severity"`
	Detail   string   `yaml:"detail" json:"detail"`
	Source   string   `yaml:"source" json:"source"`
}

// Severity is how serious a finding is.
type Severity string

// The severities: error breaks a hard limit or a stop threshold, warning
// leaves a typical range, information is for review.
const (
	SeverityError       Severity = "error"
	SeverityWarning     Severity = "warning"
	SeverityInformation Severity = "information"
)

// Default returns the formulary embedded in the binary.
func Default() (*Formulary, error) { return Parse(defaultFormulary) }

// Load reads a formulary file; an empty path is the embedded default.
func Load(path string) (*Formulary, error) {
	if path == "" {
		return Default()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("formulary: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse reads and checks a formulary. Unknown fields, unknown units,
// inverted ranges, unknown classes or settings and duplicate ids are
// errors naming the protocol and the field.
func Parse(data []byte) (*Formulary, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f Formulary
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("formulary: the file is empty")
		}
		return nil, fmt.Errorf("formulary: %w", err)
	}
	f.fillDefaults()
	if err := f.check(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	f.Checksum = hex.EncodeToString(sum[:])
	return &f, nil
}

func (f *Formulary) fillDefaults() {
	system := func(cs []Code, s string) {
		for i := range cs {
			if cs[i].System == "" {
				cs[i].System = s
			}
		}
	}
	system(f.Settings.IntravenousRoutes, mapping.SystemSNOMED)
	if f.Settings.SessionWindow == (Amount{}) {
		f.Settings.SessionWindow = Amount{Value: 2, Unit: "h"}
	}
	for i := range f.Protocols {
		p := &f.Protocols[i]
		system(p.Drug.RxNorm, mapping.SystemRxNorm)
		system(p.Indications, mapping.SystemSNOMED)
		system(p.Routes, mapping.SystemSNOMED)
		for j := range p.Ingredients {
			if p.Ingredients[j].Ingredient.System == "" {
				p.Ingredients[j].Ingredient.System = mapping.SystemRxNorm
			}
		}
		for j := range p.Monitoring {
			system(p.Monitoring[j].Codes, mapping.SystemLOINC)
		}
		for j := range p.StopThresholds {
			system(p.StopThresholds[j].Codes, mapping.SystemLOINC)
		}
		for j := range p.Selection {
			system(p.Selection[j].Codes, mapping.SystemLOINC)
		}
	}
}

// checker collects the problems of a formulary.
type checker struct {
	errs  []error
	where string
}

func (c *checker) failf(field, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("formulary: %s%s: %s", c.where, field, fmt.Sprintf(format, args...)))
}

// unit checks a unit code, and that it has the dimension of want (a unit
// of that dimension) when want is not "".
func (c *checker) unit(field, code, want string) {
	u, err := ucum.Parse(code)
	if err != nil {
		c.failf(field, "%v", err)
		return
	}
	if want == "" {
		return
	}
	w, _ := ucum.Parse(want)
	if !u.Comparable(w) {
		c.failf(field, "unit %q is %s; it must be like %s", code, u.Dimension(), want)
	}
}

// rng checks a range: its unit, low ≤ high, min ≤ low, high ≤ max.
func (c *checker) rng(field string, r *Range, like ...string) {
	if r == nil {
		return
	}
	if r.Unit == "" {
		c.failf(field+".unit", "missing")
	} else {
		ok := len(like) == 0
		u, err := ucum.Parse(r.Unit)
		if err != nil {
			c.failf(field+".unit", "%v", err)
			ok = true
		}
		for _, l := range like {
			w, _ := ucum.Parse(l)
			ok = ok || err == nil && u.Comparable(w)
		}
		if !ok {
			c.failf(field+".unit", "unit %q is %s; it must be like %s", r.Unit, u.Dimension(), strings.Join(like, " or "))
		}
	}
	if r.Low == nil && r.High == nil && r.Min == nil && r.Max == nil {
		c.failf(field, "no figure: give low/high (typical) or min/max (limits)")
	}
	order := []struct {
		name string
		v    *float64
	}{{"min", r.Min}, {"low", r.Low}, {"high", r.High}, {"max", r.Max}}
	for i := range order {
		if order[i].v != nil && *order[i].v < 0 {
			c.failf(field+"."+order[i].name, "%g is negative", *order[i].v)
		}
		for j := i + 1; j < len(order); j++ {
			if order[i].v != nil && order[j].v != nil && *order[i].v > *order[j].v {
				c.failf(field, "%s %g > %s %g", order[i].name, *order[i].v, order[j].name, *order[j].v)
			}
		}
	}
	if r.Source == "" {
		c.failf(field+".source", "missing: every figure names its source")
	}
}

func (c *checker) severity(field string, s Severity) {
	switch s {
	case SeverityError, SeverityWarning, SeverityInformation:
	default:
		c.failf(field, "severity %q is not error, warning or information", s)
	}
}

func (c *checker) codes(field string, cs []Code) {
	if len(cs) == 0 {
		c.failf(field, "missing")
	}
	for i, cd := range cs {
		if cd.Code == "" {
			c.failf(fmt.Sprintf("%s[%d].code", field, i), "missing")
		}
	}
}

var classes = []mapping.DrugClass{mapping.ClassKetamine, mapping.ClassLidocaine, mapping.ClassGabapentinoid,
	mapping.ClassVitamin, mapping.ClassOther}

func (f *Formulary) check() error {
	c := &checker{}
	if f.Version == "" {
		c.failf("version", "missing")
	}
	if f.Settings.TolerancePercent <= 0 || f.Settings.TolerancePercent >= 100 {
		c.failf("settings.tolerancePercent", "%g is not between 0 and 100", f.Settings.TolerancePercent)
	}
	c.unit("settings.weightWindow.unit", f.Settings.WeightWindow.Unit, "d")
	c.unit("settings.duringWindow.unit", f.Settings.DuringWindow.Unit, "h")
	c.unit("settings.sessionWindow.unit", f.Settings.SessionWindow.Unit, "h")
	c.codes("settings.intravenousRoutes", f.Settings.IntravenousRoutes)
	seen := map[string]bool{}
	for i := range f.Protocols {
		p := &f.Protocols[i]
		c.where = fmt.Sprintf("protocols[%d] ", i)
		if p.ID == "" {
			c.failf("id", "missing")
		} else {
			c.where = fmt.Sprintf("protocol %q: ", p.ID)
		}
		if seen[p.ID] {
			c.failf("id", "duplicate id")
		}
		seen[p.ID] = true
		if p.Version == "" {
			c.failf("version", "missing")
		}
		if u, err := url.Parse(p.Reference); err != nil || !u.IsAbs() {
			c.failf("reference", "%q is not an absolute URL", p.Reference)
		}
		if !slices.Contains(classes, p.Drug.Class) {
			c.failf("drug.class", "%q is not one of ketamine, lidocaine, gabapentinoid, vitamin-nutrient, other", p.Drug.Class)
		}
		c.codes("drug.rxnorm", p.Drug.RxNorm)
		c.codes("routes", p.Routes)
		for j, s := range p.Settings {
			if s != string(mapping.SettingClinic) && s != string(mapping.SettingHome) {
				c.failf(fmt.Sprintf("settings[%d]", j), "%q is not clinic or home", s)
			}
		}
		if r := p.NotForInfusion; r != nil {
			c.severity("notForInfusion.severity", r.Severity)
			if r.Detail == "" || r.Source == "" {
				c.failf("notForInfusion", "detail and source are required")
			}
		}
		switch p.DoseBasis {
		case "per-kg", "fixed":
		default:
			c.failf("doseBasis", "%q is not per-kg or fixed", p.DoseBasis)
		}
		c.rng("rate", p.Rate, "mg/h", "mg/kg/h", "mL/h")
		c.rng("sessionDose", p.SessionDose, "mg", "mg/kg", "mL")
		c.rng("courseDose", p.CourseDose, "mg", "mg/kg")
		c.rng("sessionDuration", p.SessionDuration, "h")
		if co := p.Course; co != nil {
			c.rng("course.sessions", co.Sessions, "1")
			if co.MinInterval != nil {
				c.unit("course.minInterval.unit", co.MinInterval.Unit, "h")
			}
			if co.Source == "" {
				c.failf("course.source", "missing: every figure names its source")
			}
		}
		for j, in := range p.Ingredients {
			field := fmt.Sprintf("ingredients[%d]", j)
			if in.Ingredient.Code == "" && len(in.Names) == 0 {
				c.failf(field+".ingredient", "give an RxNorm code or names")
			}
			c.rng(field+".rate", in.Rate, "mg/min")
			c.rng(field+".sessionDose", in.SessionDose, "mg")
		}
		for j, m := range p.Monitoring {
			field := fmt.Sprintf("monitoring[%d]", j)
			c.codes(field+".codes", m.Codes)
			switch m.When {
			case "before", "during", "after":
			default:
				c.failf(field+".when", "%q is not before, during or after", m.When)
			}
			if m.Every != nil {
				c.unit(field+".every.unit", m.Every.Unit, "min")
			}
			if m.Window != nil {
				c.unit(field+".window.unit", m.Window.Unit, "min")
			}
			if m.When == "during" && (m.Every == nil || m.Every.Value <= 0) {
				c.failf(field+".every", "a during rule says how often")
			}
			if (m.When == "before" || m.When == "after") && (m.Window == nil || m.Window.Value <= 0) {
				c.failf(field+".window", "a rule %s the session says within how long", m.When)
			}
			if m.Name == "" {
				c.failf(field+".name", "missing")
			}
			if m.Source == "" {
				c.failf(field+".source", "missing")
			}
		}
		for j, t := range p.StopThresholds {
			field := fmt.Sprintf("stopThresholds[%d]", j)
			c.codes(field+".codes", t.Codes)
			if n := count(t.Above != nil, t.AtOrAbove != nil, t.Below != nil); n != 1 {
				c.failf(field, "give exactly one of above, atOrAbove or below")
			}
			c.unit(field+".unit", t.Unit, "")
			c.severity(field+".severity", t.Severity)
			if t.Source == "" {
				c.failf(field+".source", "missing")
			}
		}
		for j, s := range p.Selection {
			field := fmt.Sprintf("selection[%d]", j)
			c.codes(field+".codes", s.Codes)
			if count(s.Above != nil, s.Below != nil, len(s.ValueCodes) > 0, s.Required) != 1 {
				c.failf(field, "give exactly one of above, below, valueCodes or required")
			}
			if s.Above != nil || s.Below != nil {
				c.unit(field+".unit", s.Unit, "")
			}
			c.unit(field+".within.unit", s.Within.Unit, "d")
			c.severity(field+".severity", s.Severity)
			if _, ok := CodeDisplay[s.Code]; s.Code != "" && !ok {
				c.failf(field+".code", "%q is not one of the detected-issue codes this server knows", s.Code)
			}
			if s.Source == "" || s.Detail == "" {
				c.failf(field, "detail and source are required")
			}
		}
	}
	return errors.Join(c.errs...)
}

func count(set ...bool) int {
	n := 0
	for _, b := range set {
		if b {
			n++
		}
	}
	return n
}

// Match returns the protocol for a drug class and ingredient codes: the
// first whose RxNorm codes include one of the drug's, else the first of the
// class; nil when none.
func (f *Formulary) Match(d mapping.Drug) *Protocol {
	var byClass *Protocol
	for i := range f.Protocols {
		p := &f.Protocols[i]
		for _, c := range p.Drug.RxNorm {
			if d.System == c.System && d.Code == c.Code {
				return p
			}
		}
		if byClass == nil && p.Drug.Class == d.Class && d.Class != mapping.ClassOther {
			byClass = p
		}
	}
	return byClass
}

// Intravenous reports whether a route is an intravenous one.
func (f *Formulary) Intravenous(route mapping.Coding) bool {
	return hasCode(f.Settings.IntravenousRoutes, route)
}

func hasCode(cs []Code, c mapping.Coding) bool {
	for _, x := range cs {
		if x.Code == c.Code && (c.System == "" || x.System == c.System) {
			return true
		}
	}
	return false
}
