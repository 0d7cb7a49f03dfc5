package protocol

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"infusion/mapping"
	"infusion/mapping/ucum"
)

// The rules, by the type of the resource they check. A rule with
// needsProtocol runs only when an intravenous protocol applies.
var (
	orderRules = []rule{
		{"order-formulary", (*env).orderFormulary},
		{"order-indication", (*env).orderIndication},
		{"order-setting", (*env).orderSetting},
		{"order-rate", (*env).orderRate},
		{"order-session-dose", (*env).orderSessionDose},
		{"order-duration", (*env).orderDuration},
		{"order-course", (*env).orderCourse},
		{"order-course-dose", (*env).orderCourseDose},
		{"order-ingredient", (*env).orderIngredients},
		{"order-duplicate", (*env).orderDuplicate},
		{"order-selection", (*env).orderSelection},
	}
	administrationRules = []rule{
		{"administration-order", (*env).administrationOrder},
		{"administration-medication", (*env).administrationMedication},
		{"administration-setting", (*env).administrationSetting},
		{"administration-rate", (*env).administrationRate},
		{"administration-dose", (*env).administrationDose},
		{"administration-duration", (*env).administrationDuration},
		{"administration-sessions", (*env).administrationSessions},
		{"administration-interval", (*env).administrationInterval},
		{"administration-status-reason", (*env).administrationStatusReason},
	}
	observationRules = []rule{
		{"observation-stop-threshold", (*env).observationStopThreshold},
	}
)

// Element paths of an order's first dosage instruction.
const (
	orderDosage      = "MedicationRequest.dosageInstruction[0]"
	orderDoseAndRate = orderDosage + ".doseAndRate[0]"
	orderRepeat      = orderDosage + ".timing.repeat"
)

// orderAt is when an order applies: its authoring, else its course start,
// else now.
func (e *env) orderAt(o *mapping.Order) time.Time {
	switch {
	case !o.AuthoredOn.IsZero():
		return o.AuthoredOn
	case !o.BoundsStart.IsZero():
		return o.BoundsStart
	}
	return e.s.Now
}

// orderFormulary finds the order's protocol. Only intravenous orders are
// checked against protocols; one whose drug or route the formulary does
// not know is reported for information, and a drug with no intravenous
// product is flagged.
func (e *env) orderFormulary(name string) {
	o := e.s.Rows.Order
	if !e.f.Intravenous(o.Route) {
		return
	}
	p := e.f.Match(o.Drug)
	drug := drugName(o.Drug)
	switch {
	case p == nil:
		e.add(Finding{Rule: name, Severity: SeverityInformation, CodeText: "drug not in the formulary", Patient: o.Patient,
			Expression: "MedicationRequest.medication",
			Detail:     fmt.Sprintf("No protocol of formulary %s covers %s as an intravenous infusion; the order was not checked against one.", e.f.Version, drug)})
		return
	case p.NotForInfusion != nil:
		e.add(Finding{Rule: name, Severity: p.NotForInfusion.Severity, CodeText: "not for intravenous use", Patient: o.Patient,
			Expression: orderDosage + ".route", Protocol: p, Source: p.NotForInfusion.Source,
			Detail: fmt.Sprintf("%s ordered intravenously: %s.", capitalise(drug), p.NotForInfusion.Detail)})
		return
	case !hasCode(p.Routes, o.Route):
		e.add(Finding{Rule: name, Severity: SeverityInformation, CodeText: "route not in the protocol", Patient: o.Patient,
			Expression: orderDosage + ".route", Protocol: p,
			Detail: fmt.Sprintf("Protocol %s does not list the route %s.", p.ID, codingName(o.Route))})
	}
	e.p = p
}

func (e *env) orderIndication(name string) {
	o := e.s.Rows.Order
	if e.p == nil || len(o.Indications) == 0 {
		return
	}
	for _, c := range o.Indications {
		if hasCode(e.p.Indications, c) {
			return
		}
	}
	var names []string
	for _, c := range o.Indications {
		names = append(names, codingName(c))
	}
	e.add(Finding{Rule: name, Severity: SeverityWarning, CodeText: "indication not covered", Patient: o.Patient,
		Expression: "MedicationRequest.reasonCode",
		Detail:     fmt.Sprintf("Protocol %s does not cover the indication %s.", e.p.ID, strings.Join(names, ", "))})
}

func (e *env) checkSetting(name, expr string, setting mapping.Setting, patient string) {
	if e.p == nil || setting == "" || slices.Contains(e.p.Settings, string(setting)) {
		return
	}
	e.add(Finding{Rule: name, Severity: SeverityWarning, CodeText: "setting not allowed", Patient: patient, Expression: expr,
		Detail: fmt.Sprintf("Protocol %s allows %s only in the setting %s, not %s.", e.p.ID, drugName(e.drug()),
			strings.Join(e.p.Settings, " or "), setting)})
}

func (e *env) orderSetting(name string) {
	o := e.s.Rows.Order
	e.checkSetting(name, "MedicationRequest.category", o.Setting, o.Patient)
}

// orderRateQuantity is the order's rate: its rateQuantity or rateRatio, or
// the top of its rateRange.
func orderRateQuantity(o *mapping.Order) (*mapping.Quantity, string) {
	if o.Rate != nil {
		if o.RateFromRatio {
			return o.Rate, orderDoseAndRate + ".rateRatio"
		}
		return o.Rate, orderDoseAndRate + ".rateQuantity"
	}
	if o.RateRange != nil && o.RateRange.High != nil {
		return o.RateRange.High, orderDoseAndRate + ".rateRange.high"
	}
	return nil, ""
}

func (e *env) orderRate(name string) {
	o := e.s.Rows.Order
	if e.p == nil {
		return
	}
	q, expr := orderRateQuantity(o)
	e.checkRange(rangeCheck{rule: name, what: "rate", expr: expr, q: q, r: e.p.Rate, conc: o.Drug.Strength,
		patient: o.Patient, at: e.orderAt(o)})
}

// sessionDose is an order's dose per session: its doseQuantity (or the
// top of its doseRange), else its rate times the session's duration.
func sessionDose(o *mapping.Order) (q *mapping.Quantity, expr, how string) {
	switch {
	case o.Dose != nil:
		return o.Dose, orderDoseAndRate + ".doseQuantity", ""
	case o.DoseRange != nil && o.DoseRange.High != nil:
		return o.DoseRange.High, orderDoseAndRate + ".doseRange.high", ""
	}
	rate, expr := orderRateQuantity(o)
	if rate == nil || o.DurationMinutes <= 0 {
		return nil, "", ""
	}
	hours := o.DurationMinutes / 60
	how = fmt.Sprintf("%s %s over %s h", num3(rate.Value), rate.Unit, num3(hours))
	for _, per := range []struct {
		suffix string
		value  float64
	}{{"/h", hours}, {"/min", o.DurationMinutes}} {
		if base, ok := strings.CutSuffix(rate.Unit, per.suffix); ok && base != "" {
			return &mapping.Quantity{Value: rate.Value * per.value, Unit: base}, expr, how
		}
	}
	return &mapping.Quantity{Value: rate.Value * hours, Unit: "(" + rate.Unit + ").h"}, expr, how
}

func (e *env) orderSessionDose(name string) {
	o := e.s.Rows.Order
	if e.p == nil {
		return
	}
	q, expr, how := sessionDose(o)
	e.checkRange(rangeCheck{rule: name, what: "dose per session", expr: expr, q: q, r: e.p.SessionDose,
		conc: o.Drug.Strength, patient: o.Patient, at: e.orderAt(o), extraVia: how})
}

func (e *env) orderDuration(name string) {
	o := e.s.Rows.Order
	if e.p == nil || o.DurationMinutes <= 0 {
		return
	}
	e.checkRange(rangeCheck{rule: name, what: "session duration", expr: orderRepeat + ".duration",
		q: &mapping.Quantity{Value: o.DurationMinutes, Unit: "min"}, r: e.p.SessionDuration, patient: o.Patient,
		at: e.orderAt(o), highCode: CodeDuration, lowCode: CodeDuration})
}

// orderCourse checks the number of sessions and how often they come.
func (e *env) orderCourse(name string) {
	o := e.s.Rows.Order
	if e.p == nil || e.p.Course == nil {
		return
	}
	co := e.p.Course
	if o.Sessions > 0 {
		e.checkRange(rangeCheck{rule: name, what: "number of sessions", expr: orderRepeat + ".count",
			q: &mapping.Quantity{Value: float64(o.Sessions), Unit: "1"}, r: co.Sessions, patient: o.Patient,
			at: e.orderAt(o), highCode: CodeDuration, lowCode: CodeDuration})
	}
	if co.MinInterval != nil && o.IntervalHours > 0 {
		minHours := duration(*co.MinInterval).Hours()
		if o.IntervalHours < minHours {
			e.add(Finding{Rule: name, Severity: SeverityError, Code: CodeInterval, Patient: o.Patient,
				Expression: orderRepeat + ".frequency", Source: co.Source,
				Detail: fmt.Sprintf("Sessions every %s h (%d per %s %s) are more frequent than the protocol's minimum interval of %s %s.",
					num3(o.IntervalHours), max(o.Frequency, 1), num3(o.Period), o.PeriodUnit, num3(co.MinInterval.Value), co.MinInterval.Unit)})
		}
	}
}

// orderCourseDose checks the dose of the whole course: the session dose
// times the number of sessions.
func (e *env) orderCourseDose(name string) {
	o := e.s.Rows.Order
	if e.p == nil || e.p.CourseDose == nil || o.Sessions <= 0 {
		return
	}
	q, expr, how := sessionDose(o)
	if q == nil {
		return
	}
	total := mapping.Quantity{Value: q.Value * float64(o.Sessions), Unit: q.Unit}
	if how == "" {
		how = fmt.Sprintf("%s %s", num3(q.Value), q.Unit)
	}
	e.checkRange(rangeCheck{rule: name, what: "cumulative course dose", expr: expr, q: &total, r: e.p.CourseDose,
		conc: o.Drug.Strength, patient: o.Patient, at: e.orderAt(o), highCode: CodeMaxDose,
		extraVia: fmt.Sprintf("%s x %d sessions", how, o.Sessions)})
}

// orderIngredients checks the limits of single ingredients of a mixture:
// the ingredient's rate from the order's volume rate and its strength.
func (e *env) orderIngredients(name string) {
	o := e.s.Rows.Order
	if e.p == nil {
		return
	}
	for _, lim := range e.p.Ingredients {
		in := findIngredient(o.Ingredients, lim)
		if in == nil {
			continue
		}
		label := "rate of " + lim.displayName(in)
		rate, expr := orderRateQuantity(o)
		if rate == nil && o.Dose != nil && o.DurationMinutes > 0 {
			rate = &mapping.Quantity{Value: o.Dose.Value / o.DurationMinutes, Unit: "(" + o.Dose.Unit + ")/min"}
			expr = orderRepeat + ".duration"
		}
		if in.Strength == nil {
			continue
		}
		e.checkRange(rangeCheck{rule: name, what: label, expr: expr, q: rate, r: lim.Rate, conc: in.Strength,
			patient: o.Patient, at: e.orderAt(o)})
		e.checkRange(rangeCheck{rule: name, what: "dose per session of " + lim.displayName(in),
			expr: orderDoseAndRate + ".doseQuantity", q: o.Dose, r: lim.SessionDose, conc: in.Strength,
			patient: o.Patient, at: e.orderAt(o)})
	}
}

func findIngredient(ins []mapping.Ingredient, lim IngredientLimit) *mapping.Ingredient {
	for i, in := range ins {
		if in.Code != "" && in.Code == lim.Ingredient.Code && in.System == lim.Ingredient.System {
			return &ins[i]
		}
		for _, n := range lim.Names {
			if strings.Contains(strings.ToLower(in.Display), strings.ToLower(n)) {
				return &ins[i]
			}
		}
	}
	return nil
}

func (l IngredientLimit) displayName(in *mapping.Ingredient) string {
	if in.Display != "" {
		return in.Display
	}
	return l.Ingredient.Display
}

// active reports whether an order is in force.
func active(status string) bool { return status == "active" || status == "on-hold" }

// span is the period an order covers; a zero end is open.
func orderSpan(o *mapping.Order) (time.Time, time.Time) {
	start := o.BoundsStart
	if start.IsZero() {
		start = o.AuthoredOn
	}
	return start, o.BoundsEnd
}

func overlaps(s1, e1, s2, e2 time.Time) bool {
	return (e2.IsZero() || s1.IsZero() || !s1.After(e2)) && (e1.IsZero() || s2.IsZero() || !s2.After(e1))
}

// orderDuplicate finds other active orders of the same class for the same
// patient whose periods overlap this one's: one finding naming them.
func (e *env) orderDuplicate(name string) {
	o := e.s.Rows.Order
	if e.p == nil || o.Patient == "" || !active(o.Status) {
		return
	}
	others, err := e.facts.ActiveOrders(o.Patient, o.Drug.Class)
	if err != nil {
		e.fail(err)
		return
	}
	s1, e1 := orderSpan(o)
	implicated := []string{e.ref}
	var ids []string
	for _, other := range others {
		if other.ID == o.ID || !e.f.Intravenous(other.Route) {
			continue
		}
		if s2, e2 := orderSpan(&other); overlaps(s1, e1, s2, e2) {
			implicated = append(implicated, "MedicationRequest/"+other.ID)
			ids = append(ids, "MedicationRequest/"+other.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	e.add(Finding{Rule: name, Severity: SeverityWarning, Code: CodeDuplicate, Patient: o.Patient,
		Expression: "MedicationRequest.medication", Implicated: implicated,
		Detail: fmt.Sprintf("%s: another active %s order for the same patient whose period overlaps this one.",
			strings.Join(ids, ", "), o.Drug.Class)})
}

// orderSelection applies the protocol's patient-selection rules to the
// patient's stored observations.
func (e *env) orderSelection(name string) {
	o := e.s.Rows.Order
	if e.p == nil || o.Patient == "" {
		return
	}
	at := e.orderAt(o)
	for _, sel := range e.p.Selection {
		codes := codings(sel.Codes)
		within := duration(sel.Within)
		as, err := e.facts.Assessments(o.Patient, codes, at.Add(-within), at)
		if err != nil {
			e.fail(err)
			return
		}
		base := Finding{Rule: name, Severity: sel.Severity, Code: sel.Code, CodeText: sel.Name, Patient: o.Patient,
			Expression: "MedicationRequest.subject", Source: sel.Source}
		if sel.Required {
			if len(as) == 0 {
				base.CodeText = "missing " + strings.ToLower(sel.Name)
				base.Detail = fmt.Sprintf("No %s (%s) in the %s %s before the order: %s.", strings.ToLower(sel.Name),
					codeList(sel.Codes), num3(sel.Within.Value), sel.Within.Unit, sel.Detail)
				e.add(base)
			}
			continue
		}
		if len(as) == 0 {
			continue
		}
		latest := as[0]
		base.Evidence = []string{"Observation/" + latest.Observation}
		if len(sel.ValueCodes) > 0 {
			if hasCode(sel.ValueCodes, latest.ValueCode) {
				base.Detail = fmt.Sprintf("The latest %s (Observation/%s, %s) is %s: %s.", strings.ToLower(sel.Name),
					latest.Observation, latest.Effective.Format(time.DateOnly), codingName(latest.ValueCode), sel.Detail)
				e.add(base)
			}
			continue
		}
		if latest.Value == nil {
			continue
		}
		v, err := ucum.Convert(latest.Value.Value, latest.Value.Unit, sel.Unit)
		if err != nil {
			base.Severity = SeverityWarning
			base.CodeText = sel.Name + " not checked"
			base.Detail = fmt.Sprintf("The latest %s (Observation/%s) could not be checked: %v.", strings.ToLower(sel.Name), latest.Observation, err)
			e.add(base)
			continue
		}
		if crossed, bound := crosses(v, sel.Above, nil, sel.Below); crossed {
			base.Detail = fmt.Sprintf("The latest %s (Observation/%s, %s) is %s %s, %s %s: %s.", strings.ToLower(sel.Name),
				latest.Observation, latest.Effective.Format(time.DateOnly), num3(v), sel.Unit, bound, sel.Unit, sel.Detail)
			e.add(base)
		}
	}
}

// crosses reports whether v is beyond a threshold, and says which.
func crosses(v float64, above, atOrAbove, below *float64) (bool, string) {
	switch {
	case above != nil && v > *above:
		return true, "above " + num3(*above)
	case atOrAbove != nil && v >= *atOrAbove:
		return true, "at or above " + num3(*atOrAbove)
	case below != nil && v < *below:
		return true, "below " + num3(*below)
	}
	return false, ""
}

// drug returns the drug of the subject.
func (e *env) drug() mapping.Drug {
	switch {
	case e.s.Rows.Order != nil:
		return e.s.Rows.Order.Drug
	case e.s.Rows.Administration != nil:
		return e.s.Rows.Administration.Drug
	}
	return mapping.Drug{}
}

func codings(cs []Code) []mapping.Coding {
	out := make([]mapping.Coding, len(cs))
	for i, c := range cs {
		out[i] = mapping.Coding{System: c.System, Code: c.Code, Display: c.Display}
	}
	return out
}

func codeList(cs []Code) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Code)
	}
	return "LOINC " + strings.Join(s, ", ")
}

func codingName(c mapping.Coding) string {
	switch {
	case c.Display != "" && c.Code != "":
		return fmt.Sprintf("%s (%s)", c.Display, c.Code)
	case c.Code != "":
		return c.Code
	case c.Display != "":
		return c.Display
	}
	return "(none)"
}

func drugName(d mapping.Drug) string {
	if d.Display != "" {
		return d.Display
	}
	if d.Code != "" {
		return d.Code
	}
	return string(d.Class)
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// deviation is how far got is from want, in percent of want.
func deviation(got, want float64) float64 {
	if want == 0 {
		return math.Inf(1)
	}
	return (got - want) / want * 100
}
