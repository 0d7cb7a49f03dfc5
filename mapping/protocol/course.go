package protocol

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"infusion/mapping"
)

// TreatmentCourse is a treatment course: an order with its administrations in
// order, what each session gave and did, and the totals.
type TreatmentCourse struct {
	Order    mapping.Order
	Protocol *Protocol // nil when no protocol covers the drug
	Sessions []Session
	// Planned is the order's number of sessions (timing.repeat.count); 0
	// when it does not say.
	Planned int
	// Given counts the sessions completed or stopped early; Stopped those
	// stopped, NotDone those not done.
	Given, Stopped, NotDone int
	// CumulativeMg is the dose of the sessions given, in mg, over
	// DoseCounted sessions; CumulativeMgPerKg over PerKgCounted sessions,
	// each divided by the body weight at that session.
	CumulativeMg      float64
	DoseCounted       int
	CumulativeMgPerKg float64
	PerKgCounted      int
	// MeanPainChange is the mean of the sessions' pain changes (after minus
	// before), over PainPairs sessions with both scores.
	MeanPainChange *float64
	PainPairs      int
	// Findings are the open findings about the order or its
	// administrations.
	Findings []mapping.Finding
}

// Completion is the share of the planned sessions given, in percent; nil
// when the order plans no number.
func (c TreatmentCourse) Completion() *float64 {
	if c.Planned <= 0 {
		return nil
	}
	v := float64(c.Given) / float64(c.Planned) * 100
	return &v
}

// Session is one administration of a course.
type Session struct {
	// Number is the session's place among those given or running (1…);
	// 0 for an administration not given.
	Number          int
	Administration  mapping.Administration
	DurationMinutes float64 // 0 when the administration has no end
	// Dose is what the session gave in mg (its dose, else rate × duration);
	// nil when it cannot be told, and DoseNote says why.
	Dose     *SessionDose
	DoseNote string
	// PainBefore is the latest pain score before the start (within the
	// formulary's session window, or part of the administration);
	// PainAfter the latest after the end.
	PainBefore, PainAfter *mapping.Assessment
	SideEffects           []mapping.Assessment
	Monitoring            Monitoring
}

// PainChange is the pain score after the session minus the one before; ok
// is false without both.
func (s Session) PainChange() (change float64, ok bool) {
	if s.PainBefore == nil || s.PainAfter == nil {
		return 0, false
	}
	return s.PainAfter.Value.Value - s.PainBefore.Value.Value, true
}

// SessionDose is the amount a session gave.
type SessionDose struct {
	Mg float64
	// MgPerKg is Mg divided by the latest body weight before the session;
	// nil without one.
	MgPerKg *float64
	Via     string // how it was worked out, e.g. "0.5 mg/kg/h × 240 min, with the body weight …"
	Weight  string // the weight Observation, "Observation/id"
}

// TreatmentCourse builds the treatment course of an order from the stored model, at
// now (sessions still running have pending monitoring).
func (c *Checker) TreatmentCourse(facts CourseFacts, order mapping.Order, now time.Time) (TreatmentCourse, error) {
	co := TreatmentCourse{Order: order, Protocol: c.f.Match(order.Drug), Planned: order.Sessions}
	adms, err := facts.Administrations(order.ID)
	if err != nil {
		return co, err
	}
	adms = slices.DeleteFunc(adms, func(a mapping.Administration) bool { return a.Status == "entered-in-error" })
	refs := []string{"MedicationRequest/" + order.ID}
	ids := make([]string, len(adms))
	for i, a := range adms {
		ids[i] = a.ID
		refs = append(refs, "MedicationAdministration/"+a.ID)
	}
	if co.Findings, err = facts.ImplicatingFindings(order.Patient, refs); err != nil {
		return co, err
	}
	if len(adms) == 0 {
		return co, nil
	}
	from, to := c.courseSpan(co.Protocol, adms, now)
	as, err := facts.SessionAssessments(order.Patient, from, to, ids)
	if err != nil {
		return co, err
	}
	var painSum float64
	number := 0
	for _, a := range adms {
		s, err := c.session(facts, &co, a, as, now)
		if err != nil {
			return co, err
		}
		if given(a.Status) {
			number++
			s.Number = number
		}
		switch a.Status {
		case "completed", "stopped":
			co.Given++
			if a.Status == "stopped" {
				co.Stopped++
			}
			if s.Dose != nil {
				co.CumulativeMg += s.Dose.Mg
				co.DoseCounted++
				if s.Dose.MgPerKg != nil {
					co.CumulativeMgPerKg += *s.Dose.MgPerKg
					co.PerKgCounted++
				}
			}
		case "not-done":
			co.NotDone++
		}
		if d, ok := s.PainChange(); ok {
			painSum += d
			co.PainPairs++
		}
		co.Sessions = append(co.Sessions, s)
	}
	if co.PainPairs > 0 {
		mean := painSum / float64(co.PainPairs)
		co.MeanPainChange = &mean
	}
	return co, nil
}

// courseSpan is the time span in which a course's pain scores, side
// effects and monitoring may fall.
func (c *Checker) courseSpan(p *Protocol, adms []mapping.Administration, now time.Time) (from, to time.Time) {
	window := duration(c.f.Settings.SessionWindow)
	for i, a := range adms {
		f, t := a.Start.Add(-window), sessionEnd(a, now).Add(window)
		if p != nil {
			pf, pt := monitoringSpan(p, a, now)
			f, t = earlier(f, pf), later(t, pt)
		}
		if i == 0 || f.Before(from) {
			from = f
		}
		if i == 0 || t.After(to) {
			to = t
		}
	}
	return from, to
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// session builds one session of a course from the course's assessments.
func (c *Checker) session(facts Facts, co *TreatmentCourse, a mapping.Administration, as []mapping.Assessment, now time.Time) (Session, error) {
	s := Session{Administration: a}
	if a.End.After(a.Start) {
		s.DurationMinutes = a.End.Sub(a.Start).Minutes()
	}
	window := duration(c.f.Settings.SessionWindow)
	start, end := a.Start, sessionEnd(a, now)
	for i := range as {
		x := &as[i]
		part := x.Administration == a.ID
		switch {
		case x.Index != 0, x.Administration != "" && !part: // another session's
		case x.Kind == mapping.KindPain && x.Value != nil:
			if !x.Effective.After(start) && (part || !x.Effective.Before(start.Add(-window))) {
				s.PainBefore = x
			} else if !x.Effective.Before(end) && (part || !x.Effective.After(end.Add(window))) {
				s.PainAfter = x
			}
		case x.Kind == mapping.KindSideEffect && (x.ValueBool == nil || *x.ValueBool):
			if part || !x.Effective.Before(start) && !x.Effective.After(end.Add(window)) {
				s.SideEffects = append(s.SideEffects, *x)
			}
		}
	}
	if given(a.Status) && !a.Start.IsZero() {
		var err error
		s.Dose, s.DoseNote, err = c.sessionDose(facts, co.Order, a, s.DurationMinutes)
		if err != nil {
			return s, err
		}
	}
	s.Monitoring = Monitoring{Administration: a, Protocol: co.Protocol}
	if s.Monitoring.Reason = c.unmonitored(co.Protocol, a); s.Monitoring.Reason == "" {
		c.judge(&s.Monitoring, as, now)
	}
	return s, nil
}

// unmonitored says why an administration has no monitoring to judge; ""
// when it has.
func (c *Checker) unmonitored(p *Protocol, a mapping.Administration) string {
	switch {
	case p == nil:
		return fmt.Sprintf("no protocol of formulary %s covers %s", c.f.Version, drugName(a.Drug))
	case !given(a.Status):
		return fmt.Sprintf("the administration was not given (status %s)", a.Status)
	case a.Start.IsZero():
		return "the administration has no start time"
	}
	return ""
}

// sessionDose works out what a session gave in mg: its dose, else its
// rate times its duration, through the order's concentration and the
// patient's weight when the units need them. A dose that cannot be worked
// out is a note, not an error; the error is a failing fact lookup.
func (c *Checker) sessionDose(facts Facts, order mapping.Order, a mapping.Administration, minutes float64) (*SessionDose, string, error) {
	e := &env{f: c.f, facts: facts, s: Subject{Type: "MedicationAdministration", ID: a.ID,
		Rows: mapping.Rows{Administration: &a}}, order: &order}
	conc := a.Drug.Strength
	if conc == nil {
		conc = order.Drug.Strength
	}
	var mg float64
	var via string
	var evidence []string
	switch {
	case a.Dose != nil:
		got, err := e.convert(*a.Dose, "mg", conc, a.Patient, a.Start)
		if err != nil {
			return nil, fmt.Sprintf("the dose %s cannot be expressed in mg: %s", amount(a.Dose.Value, a.Dose.Unit), reason(err)), errors.Join(e.errs...)
		}
		mg, via, evidence = got.value, got.via, got.evidence
	case a.Rate != nil && minutes > 0:
		got, err := e.convert(*a.Rate, "mg/h", conc, a.Patient, a.Start)
		if err != nil {
			return nil, fmt.Sprintf("the rate %s cannot be expressed in mg/h: %s", amount(a.Rate.Value, a.Rate.Unit), reason(err)), errors.Join(e.errs...)
		}
		mg, evidence = got.value*minutes/60, got.evidence
		via = fmt.Sprintf("%s for %s min", amount(a.Rate.Value, a.Rate.Unit), num3(minutes))
		if got.via != "" {
			via += fmt.Sprintf(" (%s %s)", amount(got.value, "mg/h"), got.via)
		}
	case a.Rate != nil:
		return nil, "the administration gives a rate but no end, so the amount given is unknown", nil
	default:
		return nil, "the administration gives neither a dose nor a rate", nil
	}
	d := &SessionDose{Mg: mg, Via: via}
	if w := e.patientWeight(a.Patient, a.Start); w != nil {
		perKg := mg / w.kg
		d.MgPerKg, d.Weight = &perKg, w.evidence
	} else if len(evidence) > 0 {
		d.Weight = evidence[0]
	}
	return d, "", errors.Join(e.errs...)
}

// reason words a conversion error for a note.
func reason(err error) string {
	if errors.Is(err, errNoWeight) {
		return "no body weight (LOINC 29463-7) before the session"
	}
	return err.Error()
}

// TreatmentCourses builds the treatment courses of a patient: every order with an
// intravenous route or with administrations, by authoredOn.
func (c *Checker) TreatmentCourses(facts CourseFacts, patient string, now time.Time) ([]TreatmentCourse, error) {
	orders, err := facts.PatientOrders(patient)
	if err != nil {
		return nil, err
	}
	var out []TreatmentCourse
	for _, o := range orders {
		if o.Status == "entered-in-error" {
			continue
		}
		co, err := c.TreatmentCourse(facts, o, now)
		if err != nil {
			return nil, err
		}
		if len(co.Sessions) > 0 || c.f.Intravenous(o.Route) {
			out = append(out, co)
		}
	}
	return out, nil
}
