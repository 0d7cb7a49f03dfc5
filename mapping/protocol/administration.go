package protocol

import (
	"errors"
	"fmt"
	"math"
	"time"

	"infusion/mapping"
	"infusion/mapping/ucum"
)

const adminDosage = "MedicationAdministration.dosage"

// given reports whether an administration status counts as a session
// given: completed, stopped early, or running.
func given(status string) bool {
	return status == "completed" || status == "stopped" || status == "in-progress"
}

// administrationOrder checks the order an administration fulfils and
// finds the protocol that applies.
func (e *env) administrationOrder(name string) {
	a := e.s.Rows.Administration
	base := Finding{Rule: name, Severity: SeverityWarning, Patient: a.Patient, Expression: "MedicationAdministration.request"}
	if a.Order != "" {
		o, err := e.facts.Order(a.Order)
		if err != nil {
			e.fail(err)
			return
		}
		e.order = o
		switch {
		case o == nil:
			base.CodeText = "order not found"
			base.Detail = fmt.Sprintf("The administration names MedicationRequest/%s, which this server does not hold.", a.Order)
			e.add(base)
		case o.Patient != "" && a.Patient != "" && o.Patient != a.Patient:
			base.Severity, base.CodeText = SeverityError, "order of another patient"
			base.Implicated = []string{e.ref, "MedicationRequest/" + o.ID}
			base.Detail = fmt.Sprintf("MedicationRequest/%s is for %s, but the administration is for %s.", o.ID, o.Patient, a.Patient)
			e.add(base)
		case o.Status != "active" && o.Status != "completed":
			base.CodeText = "order not active"
			base.Implicated = []string{e.ref, "MedicationRequest/" + o.ID}
			base.Detail = fmt.Sprintf("MedicationRequest/%s has the status %s.", o.ID, o.Status)
			e.add(base)
		}
	}
	route := a.Route
	if route.Code == "" && e.order != nil {
		route = e.order.Route
	}
	drug := a.Drug
	if drug.Code == "" && drug.Class == mapping.ClassOther && e.order != nil {
		drug = e.order.Drug
	}
	if !e.f.Intravenous(route) {
		return
	}
	if p := e.f.Match(drug); p != nil && p.NotForInfusion == nil {
		e.p = p
	}
	if a.Order == "" && e.p != nil {
		base.CodeText = "no order"
		base.Detail = fmt.Sprintf("The %s infusion names no order (MedicationAdministration.request).", drugName(drug))
		e.add(base)
	}
}

// administrationMedication checks that what was given is what was ordered.
func (e *env) administrationMedication(name string) {
	a, o := e.s.Rows.Administration, e.order
	if o == nil {
		return
	}
	same := a.Drug.Code != "" && o.Drug.Code != "" && a.Drug.System == o.Drug.System && a.Drug.Code == o.Drug.Code
	if !same && (a.Drug.Code == "" || o.Drug.Code == "" || a.Drug.System != o.Drug.System) {
		same = a.Drug.Class == o.Drug.Class && a.Drug.Class != mapping.ClassOther
	}
	if same {
		return
	}
	e.add(Finding{Rule: name, Severity: SeverityError, CodeText: "medication differs from the order", Patient: a.Patient,
		Expression: "MedicationAdministration.medication", Implicated: []string{e.ref, "MedicationRequest/" + o.ID},
		Detail: fmt.Sprintf("%s was given, but MedicationRequest/%s orders %s.", capitalise(drugName(a.Drug)), o.ID, drugName(o.Drug))})
}

func (e *env) administrationSetting(name string) {
	a := e.s.Rows.Administration
	e.checkSetting(name, "MedicationAdministration.category", a.Setting, a.Patient)
}

// concentration is the strength of the given drug, else of the ordered one.
func (e *env) concentration() *mapping.Ratio {
	if s := e.s.Rows.Administration.Drug.Strength; s != nil {
		return s
	}
	if e.order != nil {
		return e.order.Drug.Strength
	}
	return nil
}

// compareToOrder adds a finding when an administered quantity deviates from
// the ordered one by more than the tolerance.
func (e *env) compareToOrder(name, what, expr string, got, want *mapping.Quantity, wantExpr string) {
	a := e.s.Rows.Administration
	if got == nil || want == nil {
		return
	}
	c, err := e.convert(*got, want.Unit, e.concentration(), a.Patient, a.Start)
	base := Finding{Rule: name, Severity: SeverityWarning, Patient: a.Patient, Expression: expr,
		Implicated: []string{e.ref, "MedicationRequest/" + e.order.ID}}
	if err != nil {
		base.CodeText = what + " not compared"
		base.Detail = fmt.Sprintf("The %s given, %s %s, could not be compared with the ordered %s %s: %v.",
			what, num3(got.Value), got.Unit, num3(want.Value), want.Unit, err)
		e.add(base)
		return
	}
	d := deviation(c.value, want.Value)
	if withinTolerance(d, e.f.Settings.TolerancePercent) {
		return
	}
	dir, code := "more", CodeHighDose
	if d < 0 {
		dir, code = "less", CodeLowDose
	}
	if what == "rate" {
		dir = map[string]string{"more": "faster", "less": "slower"}[dir]
	}
	shown := num3(got.Value) + " " + got.Unit
	if c.via != "" || got.Unit != want.Unit {
		shown += fmt.Sprintf(" (%s %s %s)", num3(c.value), want.Unit, c.via)
	}
	base.Code, base.Evidence = code, c.evidence
	base.CodeText = fmt.Sprintf("%s deviates from the order", what)
	base.Detail = fmt.Sprintf("The %s given, %s, is %s%% %s than ordered (%s %s at %s); the tolerance is %s%%.",
		what, shown, num3(math.Abs(d)), dir, num3(want.Value), want.Unit, wantExpr, num3(e.f.Settings.TolerancePercent))
	e.add(base)
}

// limitsOnly keeps the hard limits of a range.
func limitsOnly(r *Range) *Range {
	if r == nil || r.Min == nil && r.Max == nil {
		return nil
	}
	return &Range{Unit: r.Unit, Min: r.Min, Max: r.Max, Source: r.Source}
}

func (e *env) administrationRate(name string) {
	a := e.s.Rows.Administration
	expr := adminDosage + ".rateQuantity"
	if a.RateFromRatio {
		expr = adminDosage + ".rateRatio"
	}
	if e.order != nil {
		want, _ := orderRateQuantity(e.order)
		e.compareToOrder(name, "rate", expr, a.Rate, want, "MedicationRequest/"+e.order.ID)
	}
	if e.p != nil {
		e.checkRange(rangeCheck{rule: name + "-limit", what: "rate given", expr: expr, q: a.Rate, r: limitsOnly(e.p.Rate),
			conc: e.concentration(), patient: a.Patient, at: a.Start})
	}
}

func (e *env) administrationDose(name string) {
	a := e.s.Rows.Administration
	expr := adminDosage + ".dose"
	if e.order != nil {
		if want, _, _ := sessionDose(e.order); want != nil {
			e.compareToOrder(name, "dose", expr, a.Dose, want, "MedicationRequest/"+e.order.ID)
		}
	}
	if e.p != nil {
		e.checkRange(rangeCheck{rule: name + "-limit", what: "dose given", expr: expr, q: a.Dose, r: limitsOnly(e.p.SessionDose),
			conc: e.concentration(), patient: a.Patient, at: a.Start})
	}
}

// administrationDuration compares a completed session's length with the
// ordered one and the protocol's limits.
func (e *env) administrationDuration(name string) {
	a := e.s.Rows.Administration
	if a.Status != "completed" || a.End.IsZero() || !a.End.After(a.Start) {
		return
	}
	minutes := a.End.Sub(a.Start).Minutes()
	got := &mapping.Quantity{Value: minutes, Unit: "min"}
	expr := "MedicationAdministration.effectivePeriod"
	if e.order != nil && e.order.DurationMinutes > 0 {
		d := deviation(minutes, e.order.DurationMinutes)
		if !withinTolerance(d, e.f.Settings.TolerancePercent) {
			dir := "longer"
			if d < 0 {
				dir = "shorter"
			}
			e.add(Finding{Rule: name, Severity: SeverityWarning, Code: CodeDuration, CodeText: "duration differs from the order",
				Patient: a.Patient, Expression: expr, Implicated: []string{e.ref, "MedicationRequest/" + e.order.ID},
				Detail: fmt.Sprintf("The session lasted %s min, %s%% %s than the ordered %s min; the tolerance is %s%%.",
					num3(minutes), num3(math.Abs(d)), dir, num3(e.order.DurationMinutes), num3(e.f.Settings.TolerancePercent))})
		}
	}
	if e.p != nil {
		e.checkRange(rangeCheck{rule: name + "-limit", what: "session duration", expr: expr, q: got,
			r: limitsOnly(e.p.SessionDuration), patient: a.Patient, at: a.Start, highCode: CodeDuration, lowCode: CodeDuration})
	}
}

// sessionsOf returns the sessions given of the subject's order, the
// subject included, by start.
func (e *env) sessionsOf() []mapping.Administration {
	a := e.s.Rows.Administration
	all, err := e.facts.Administrations(e.order.ID)
	if err != nil {
		e.fail(err)
		return nil
	}
	var out []mapping.Administration
	placed := false
	for _, x := range all {
		if x.ID == a.ID {
			continue
		}
		if !placed && a.Start.Before(x.Start) && given(a.Status) {
			out, placed = append(out, *a), true
		}
		if given(x.Status) {
			out = append(out, x)
		}
	}
	if !placed && given(a.Status) {
		out = append(out, *a)
	}
	return out
}

func (e *env) administrationSessions(name string) {
	a := e.s.Rows.Administration
	if e.order == nil || e.order.Sessions <= 0 || !given(a.Status) {
		return
	}
	sessions := e.sessionsOf()
	n := 0
	for i, x := range sessions {
		if x.ID == a.ID {
			n = i + 1
		}
	}
	if n <= e.order.Sessions {
		return
	}
	e.add(Finding{Rule: name, Severity: SeverityWarning, Code: CodeDuration, CodeText: "more sessions than ordered",
		Patient: a.Patient, Expression: "MedicationAdministration.request", Implicated: []string{e.ref, "MedicationRequest/" + e.order.ID},
		Detail: fmt.Sprintf("This is session %d, but MedicationRequest/%s orders %d.", n, e.order.ID, e.order.Sessions)})
}

// administrationInterval checks the time since the previous session of the
// same order against the ordered interval and the protocol's minimum.
func (e *env) administrationInterval(name string) {
	a := e.s.Rows.Administration
	if e.order == nil || !given(a.Status) || a.Start.IsZero() {
		return
	}
	var prev *mapping.Administration
	for _, x := range e.sessionsOf() {
		if x.ID != a.ID && x.Start.Before(a.Start) {
			prev = &x
		}
	}
	if prev == nil {
		return
	}
	gap := a.Start.Sub(prev.Start).Hours()
	base := Finding{Rule: name, Code: CodeInterval, CodeText: "session sooner than the interval", Patient: a.Patient,
		Expression: "MedicationAdministration.effective", Implicated: []string{e.ref, "MedicationAdministration/" + prev.ID}}
	if e.p != nil && e.p.Course != nil && e.p.Course.MinInterval != nil {
		if minHours := duration(*e.p.Course.MinInterval).Hours(); gap < minHours {
			base.Severity, base.Source = SeverityError, e.p.Course.Source
			base.Detail = fmt.Sprintf("This session started %s h after the previous one (MedicationAdministration/%s); the protocol's minimum interval is %s %s.",
				num3(gap), prev.ID, num3(e.p.Course.MinInterval.Value), e.p.Course.MinInterval.Unit)
			e.add(base)
			return
		}
	}
	ordered := e.order.IntervalHours
	if ordered > 0 && gap < ordered*(1-e.f.Settings.TolerancePercent/100) {
		base.Severity = SeverityWarning
		base.Detail = fmt.Sprintf("This session started %s h after the previous one (MedicationAdministration/%s); MedicationRequest/%s orders one every %s h.",
			num3(gap), prev.ID, e.order.ID, num3(ordered))
		e.add(base)
	}
}

func (e *env) administrationStatusReason(name string) {
	a := e.s.Rows.Administration
	if (a.Status == "stopped" || a.Status == "not-done") && len(a.StatusReason) == 0 {
		e.add(Finding{Rule: name, Severity: SeverityWarning, CodeText: "no status reason", Patient: a.Patient,
			Expression: "MedicationAdministration.statusReason",
			Detail:     fmt.Sprintf("The administration is %s but gives no statusReason, so the reason cannot be counted.", a.Status)})
	}
}

// observationStopThreshold checks each value of an observation taken
// during an administration in progress against the protocol's stop
// thresholds.
func (e *env) observationStopThreshold(name string) {
	for _, as := range e.s.Rows.Assessments {
		if as.Value == nil || as.Patient == "" && as.Administration == "" {
			continue
		}
		admins, err := e.runningAt(as)
		if err != nil {
			e.fail(err)
			return
		}
		for _, adm := range admins {
			p := e.f.Match(adm.Drug)
			if p == nil {
				continue
			}
			e.thresholds(name, as, adm, p)
		}
	}
}

// runningAt returns the administrations an assessment was taken during:
// the one it is part of, else the patient's in progress at its time.
func (e *env) runningAt(as mapping.Assessment) ([]mapping.Administration, error) {
	if as.Administration != "" {
		a, err := e.facts.Administration(as.Administration)
		if a == nil || err != nil {
			return nil, err
		}
		return []mapping.Administration{*a}, nil
	}
	if as.Effective.IsZero() {
		return nil, nil
	}
	window := duration(e.f.Settings.DuringWindow)
	all, err := e.facts.PatientAdministrations(as.Patient, as.Effective.Add(-window), as.Effective)
	if err != nil {
		return nil, err
	}
	var out []mapping.Administration
	for _, a := range all {
		end := a.End
		if end.IsZero() || end.Equal(a.Start) && a.Status == "in-progress" {
			end = a.Start.Add(window)
		}
		if !as.Effective.Before(a.Start) && !as.Effective.After(end) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (e *env) thresholds(name string, as mapping.Assessment, adm mapping.Administration, p *Protocol) {
	var worst *Finding
	for _, t := range p.StopThresholds {
		crossed, bound, err := t.Crossed(as)
		if !crossed && err == nil {
			continue
		}
		expr := "Observation.valueQuantity"
		if as.Index > 0 {
			expr = fmt.Sprintf("Observation.component[%d].valueQuantity", as.Index-1)
		}
		f := Finding{Rule: name, Severity: t.Severity, Code: CodeObservation, Patient: as.Patient, Expression: expr,
			Implicated: []string{e.ref, "MedicationAdministration/" + adm.ID}, Protocol: p, Source: t.Source,
			CodeText: "stop threshold: " + t.Name}
		if as.Category == "laboratory" {
			f.Code = CodeLab
		}
		if err != nil {
			f.Severity, f.CodeText = SeverityWarning, t.Name+" not checked"
			f.Detail = fmt.Sprintf("%s %s %s during MedicationAdministration/%s could not be checked against the stop threshold: %v.",
				t.Name, num3(as.Value.Value), as.Value.Unit, adm.ID, err)
		} else {
			f.Detail = fmt.Sprintf("%s %s %s at %s during MedicationAdministration/%s (%s) is %s %s, the stop threshold of protocol %s.",
				t.Name, num3(as.Value.Value), as.Value.Unit, as.Effective.UTC().Format(time.RFC3339), adm.ID, drugName(adm.Drug),
				bound, t.Unit, p.ID)
		}
		if worst == nil || rank(f.Severity) > rank(worst.Severity) {
			worst = &f
		}
	}
	if worst != nil {
		e.add(*worst)
	}
}

// Crossed reports whether an assessment's value is beyond the threshold,
// and which bound it passed ("above 180"); the error says why a value of
// the threshold's code cannot be compared (no value, a unit that does not
// convert). An assessment of another code never crosses.
func (t Threshold) Crossed(as mapping.Assessment) (bool, string, error) {
	if !hasCode(t.Codes, as.Code) {
		return false, "", nil
	}
	if as.Value == nil {
		return false, "", errors.New("the observation has no numeric value")
	}
	v, err := ucum.Convert(as.Value.Value, as.Value.Unit, t.Unit)
	if err != nil {
		return false, "", err
	}
	crossed, bound := crosses(v, t.Above, t.AtOrAbove, t.Below)
	return crossed, bound, nil
}

func rank(s Severity) int {
	switch s {
	case SeverityError:
		return 2
	case SeverityWarning:
		return 1
	}
	return 0
}

// withinTolerance reports whether a deviation in percent is within the
// tolerance; exactly at the tolerance is within (up to rounding).
func withinTolerance(deviation, tolerance float64) bool {
	return math.Abs(deviation) <= tolerance+1e-9
}
