package protocol

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"infusion/mapping"
	"infusion/mapping/ucum"
)

// Facts are the stored model rows the rules read beyond the resource being
// checked. Every method answers from the current versions.
type Facts interface {
	// Assessments returns a patient's assessments with one of the codes,
	// effective in [from, to], latest first.
	Assessments(patient string, codes []mapping.Coding, from, to time.Time) ([]mapping.Assessment, error)
	// Order returns an order; nil when there is none.
	Order(id string) (*mapping.Order, error)
	// ActiveOrders returns a patient's active and on-hold orders of a drug
	// class, newest first (a bounded number: the store's choice).
	ActiveOrders(patient string, class mapping.DrugClass) ([]mapping.Order, error)
	// Administration returns an administration; nil when there is none.
	Administration(id string) (*mapping.Administration, error)
	// Administrations returns the administrations of an order, by start.
	Administrations(orderID string) ([]mapping.Administration, error)
	// PatientAdministrations returns a patient's administrations that
	// started in [from, to].
	PatientAdministrations(patient string, from, to time.Time) ([]mapping.Administration, error)
}

// Finding is what a rule found about the resource being checked.
type Finding struct {
	Rule     string // the rule's name, e.g. "order-rate"
	Severity Severity
	// Code is the v3 ActCode detected-issue code when one fits; CodeText
	// says the problem in words either way.
	Code, CodeText string
	Detail         string
	// Expression is the element of the checked resource, FHIRPath.
	Expression string
	// Implicated are the resources concerned, "Type/id"; the first is the
	// checked resource.
	Implicated []string
	// Evidence are resources the check used, "Type/id" (the weight …).
	Evidence []string
	Protocol *Protocol // nil when no protocol applies
	Source   string    // the source of the figure
	Patient  string
}

// Key identifies a finding across versions of the checked resource: the
// same rule on the same element is the same problem.
func (f Finding) Key() string {
	return f.Implicated[0] + "|" + f.Rule + "|" + f.Expression + "|" + f.CodeText
}

// The v3 ActCode detected-issue codes the rules use.
const (
	CodeHighDose    = "DOSEH"
	CodeLowDose     = "DOSEL"
	CodeDuration    = "DOSEDUR"
	CodeInterval    = "DOSEIVL"
	CodeDuplicate   = "DUPTHPY"
	CodeCondition   = "COND"
	CodePregnancy   = "PREG"
	CodeObservation = "OBSA"
	CodeLab         = "LAB"
	CodeMaxDose     = "MDOSE"
	SystemActCode   = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
)

// CodeDisplay is the display of each code.
var CodeDisplay = map[string]string{
	CodeHighDose:    "High Dose Alert",
	CodeLowDose:     "Low Dose Alert",
	CodeDuration:    "Dose-Duration Alert",
	CodeInterval:    "Dose-Interval Alert",
	CodeDuplicate:   "Duplicate Therapy Alert",
	CodeCondition:   "Condition Alert",
	CodePregnancy:   "Pregnancy Alert",
	CodeObservation: "Observation Alert",
	CodeLab:         "Lab Alert",
	CodeMaxDose:     "maximum dosage reached",
}

// Checker runs the rules of a formulary.
type Checker struct {
	f *Formulary
}

// NewChecker returns a Checker for a formulary.
func NewChecker(f *Formulary) *Checker { return &Checker{f: f} }

// Formulary returns the checker's formulary.
func (c *Checker) Formulary() *Formulary { return c.f }

// Subject is the resource a check is about: its type, id and model rows.
type Subject struct {
	Type, ID string
	Rows     mapping.Rows
	Now      time.Time // when the check runs
}

// env is what one rule sees.
type env struct {
	f     *Formulary
	facts Facts
	s     Subject
	p     *Protocol
	order *mapping.Order // an administration's order, when found
	out   []Finding
	ref   string // "Type/id" of the subject
	// weight is the patient's latest body weight, looked up once.
	weight       *weight
	weightLoaded bool
	errs         []error
}

type weight struct {
	kg       float64
	evidence string // Observation/id
}

// Check runs every rule that applies to the subject and returns its
// findings. A failing fact lookup is an error; a missing or unconvertible
// figure is a finding, never an error.
func (c *Checker) Check(facts Facts, s Subject) ([]Finding, error) {
	e := &env{f: c.f, facts: facts, s: s, ref: s.Type + "/" + s.ID}
	switch {
	case s.Rows.Order != nil:
		e.runAll(orderRules)
	case s.Rows.Administration != nil:
		e.runAll(administrationRules)
	case len(s.Rows.Assessments) > 0:
		e.runAll(observationRules)
	}
	return e.out, errors.Join(e.errs...)
}

// rule is one named check.
type rule struct {
	name  string
	check func(e *env, name string)
}

func (e *env) runAll(rules []rule) {
	for _, r := range rules {
		r.check(e, r.name)
	}
}

// add records a finding of the current rule.
func (e *env) add(f Finding) {
	if f.Implicated == nil {
		f.Implicated = []string{e.ref}
	} else if f.Implicated[0] != e.ref {
		f.Implicated = append([]string{e.ref}, f.Implicated...)
	}
	if f.Protocol == nil {
		f.Protocol = e.p
	}
	if f.CodeText == "" {
		f.CodeText = CodeDisplay[f.Code]
	}
	e.out = append(e.out, f)
}

func (e *env) fail(err error) { e.errs = append(e.errs, err) }

// patientWeight returns the latest body weight within the formulary's
// window before at; nil when there is none.
func (e *env) patientWeight(patient string, at time.Time) *weight {
	if e.weightLoaded {
		return e.weight
	}
	e.weightLoaded = true
	if patient == "" {
		return nil
	}
	window := duration(e.f.Settings.WeightWindow)
	as, err := e.facts.Assessments(patient, weightCodes, at.Add(-window), at)
	if err != nil {
		e.fail(err)
		return nil
	}
	for _, a := range as {
		if a.Value == nil || a.Index != 0 {
			continue
		}
		kg, err := ucum.Convert(a.Value.Value, a.Value.Unit, "kg")
		if err == nil && kg > 0 {
			e.weight = &weight{kg: kg, evidence: "Observation/" + a.Observation}
			return e.weight
		}
	}
	return nil
}

var weightCodes = []mapping.Coding{{System: mapping.SystemLOINC, Code: "29463-7"}, {System: mapping.SystemLOINC, Code: "3141-9"}}

// duration converts an Amount of time to a time.Duration.
// Duration is an amount of time as a time.Duration; 0 when its unit is not
// one of time.
func (a Amount) Duration() time.Duration { return duration(a) }

func duration(a Amount) time.Duration {
	s, err := ucum.Convert(a.Value, a.Unit, "s")
	if err != nil {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// errNoWeight says a conversion needs the patient's weight.
var errNoWeight = errors.New("needs the patient's body weight")

// converted is a quantity in a target unit, with how it got there.
type converted struct {
	value    float64
	via      string   // e.g. "with the weight 72.5 kg"
	evidence []string // the weight Observation
}

// convert expresses q in the unit target, through the patient's weight
// (mg/h ↔ mg/kg/h) and the drug's concentration (mL/h → mg/h) when the
// dimensions need them. It tries the plain conversion first.
func (e *env) convert(q mapping.Quantity, target string, conc *mapping.Ratio, patient string, at time.Time) (converted, error) {
	from, err := ucum.Parse(q.Unit)
	if err != nil {
		return converted{}, err
	}
	to, err := ucum.Parse(target)
	if err != nil {
		return converted{}, err
	}
	kg, _ := ucum.Parse("kg")
	type step struct {
		unit   ucum.Unit
		factor float64
		via    []string
		weight int // -1: divided by the weight, 1: multiplied
	}
	steps := []step{{unit: from, factor: 1}}
	if conc != nil && conc.Denominator.Value != 0 {
		num, err1 := ucum.Parse(conc.Numerator.Unit)
		den, err2 := ucum.Parse(conc.Denominator.Unit)
		if err1 == nil && err2 == nil {
			c := conc.Numerator.Value / conc.Denominator.Value
			steps = append(steps, step{unit: from.Times(num.Per(den)), factor: c,
				via: []string{fmt.Sprintf("at the concentration %s %s/%s", num3(conc.Numerator.Value), conc.Numerator.Unit, unitWithValue(conc.Denominator))}})
		}
	}
	for _, s := range slices.Clip(steps) { // each step also per kg and times kg
		steps = append(steps, step{unit: s.unit.Per(kg), factor: s.factor, via: s.via, weight: -1},
			step{unit: s.unit.Times(kg), factor: s.factor, via: s.via, weight: 1})
	}
	for _, s := range steps {
		if !s.unit.Comparable(to) {
			continue
		}
		v := q.Value * s.factor
		out := converted{via: strings.Join(s.via, ", ")}
		if s.weight != 0 {
			w := e.patientWeight(patient, at)
			if w == nil {
				return converted{}, errNoWeight
			}
			if s.weight < 0 {
				v /= w.kg
			} else {
				v *= w.kg
			}
			if out.via != "" {
				out.via += ", "
			}
			out.via += fmt.Sprintf("with the body weight %s kg (%s)", num3(w.kg), w.evidence)
			out.evidence = []string{w.evidence}
		}
		v, err := s.unit.ConvertTo(v, to)
		if err != nil {
			return converted{}, err
		}
		out.value = v
		return out, nil
	}
	return converted{}, fmt.Errorf("%s (%s) does not convert to %s (%s)", q.Unit, from.Dimension(), target, to.Dimension())
}

func unitWithValue(q mapping.Quantity) string {
	if q.Value == 1 {
		return q.Unit
	}
	return num3(q.Value) + " " + q.Unit
}

// num3 formats a figure with at most three decimals.
func num3(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// rangeCheck compares a quantity with a range of the protocol and adds a
// finding when it leaves the typical band (warning) or breaks a hard limit
// (error); when it cannot be compared, the finding says why.
type rangeCheck struct {
	rule, what, expr string
	q                *mapping.Quantity
	r                *Range
	conc             *mapping.Ratio
	patient          string
	at               time.Time
	highCode         string // code when too high, default DOSEH
	lowCode          string // code when too low, default DOSEL
	extraVia         string
}

func (e *env) checkRange(rc rangeCheck) {
	if rc.r == nil || rc.q == nil {
		return
	}
	high, low := rc.highCode, rc.lowCode
	if high == "" {
		high = CodeHighDose
	}
	if low == "" {
		low = CodeLowDose
	}
	got, err := e.convert(*rc.q, rc.r.Unit, rc.conc, rc.patient, rc.at)
	shown := amount(rc.q.Value, rc.q.Unit)
	if err != nil {
		detail := fmt.Sprintf("The %s %s could not be checked against the protocol's %s range: ", rc.what, shown, rc.r.Unit)
		if errors.Is(err, errNoWeight) {
			detail += fmt.Sprintf("no body weight (LOINC 29463-7) within %s %s before it.", num3(e.f.Settings.WeightWindow.Value), e.f.Settings.WeightWindow.Unit)
		} else {
			detail += err.Error() + "."
		}
		e.add(Finding{Rule: rc.rule, Severity: SeverityWarning, CodeText: rc.what + " not checked", Detail: detail,
			Expression: rc.expr, Source: rc.r.Source, Patient: rc.patient})
		return
	}
	v := got.value
	var notes []string
	if rc.extraVia != "" {
		notes = append(notes, rc.extraVia)
	}
	if got.via != "" || rc.q.Unit != rc.r.Unit {
		notes = append(notes, strings.TrimSpace(amount(v, rc.r.Unit)+" "+got.via))
	}
	if len(notes) > 0 {
		shown += " (" + strings.Join(notes, "; ") + ")"
	}
	var sev Severity
	var code, bound string
	switch {
	case rc.r.Max != nil && v > *rc.r.Max:
		sev, code, bound = SeverityError, high, "above the protocol's hard limit of "+amount(*rc.r.Max, rc.r.Unit)
	case rc.r.Min != nil && v < *rc.r.Min:
		sev, code, bound = SeverityError, low, "below the protocol's hard limit of "+amount(*rc.r.Min, rc.r.Unit)
	case rc.r.High != nil && v > *rc.r.High:
		sev, code, bound = SeverityWarning, high, fmt.Sprintf("above the protocol's typical range (%s)", rc.r.band())
	case rc.r.Low != nil && v < *rc.r.Low:
		sev, code, bound = SeverityWarning, low, fmt.Sprintf("below the protocol's typical range (%s)", rc.r.band())
	default:
		return
	}
	e.add(Finding{Rule: rc.rule, Severity: sev, Code: code, Detail: fmt.Sprintf("The %s %s is %s.", rc.what, shown, bound),
		Expression: rc.expr, Evidence: got.evidence, Source: rc.r.Source, Patient: rc.patient})
}

// band renders the typical range.
func (r *Range) band() string {
	switch {
	case r.Low != nil && r.High != nil:
		return amount(*r.Low, "") + "–" + amount(*r.High, r.Unit)
	case r.High != nil:
		return "up to " + amount(*r.High, r.Unit)
	case r.Low != nil:
		return "from " + amount(*r.Low, r.Unit)
	}
	return r.Unit
}

// amount renders a figure with its unit; a count (unit 1) has none.
func amount(v float64, unit string) string {
	if unit == "" || unit == "1" {
		return num3(v)
	}
	return num3(v) + " " + unit
}
