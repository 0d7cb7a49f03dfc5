package protocol

import (
	"time"

	"infusion/mapping"
)

// CourseFacts are the stored model rows that monitoring compliance and
// treatment courses read beyond those of the checks.
type CourseFacts interface {
	Facts
	// PatientOrders returns a patient's orders, by authoredOn.
	PatientOrders(patient string) ([]mapping.Order, error)
	// SessionAssessments returns a patient's assessments effective in
	// [from, to] and those part of one of the administrations (ids), by
	// effective time.
	SessionAssessments(patient string, from, to time.Time, administrations []string) ([]mapping.Assessment, error)
	// ImplicatingFindings returns the open findings that implicate one of
	// the resources ("Type/id").
	ImplicatingFindings(patient string, resources []string) ([]mapping.Finding, error)
}

// RequirementStatus says whether a required observation was taken.
type RequirementStatus string

// The statuses: met by an observation in the window; missing once the
// window has passed without one; pending while the window is still open.
const (
	Met     RequirementStatus = "met"
	Missing RequirementStatus = "missing"
	Pending RequirementStatus = "pending"
)

// Requirement is one observation a session needed: a monitoring rule of
// the protocol and the window it was due in.
type Requirement struct {
	Monitor  *Monitor
	From, To time.Time
	Status   RequirementStatus
	// Observation is the Observation that met it ("Observation/id") and
	// Effective when it was taken.
	Observation string
	Effective   time.Time
}

// Crossing is a value beyond a stop threshold, taken during a session.
type Crossing struct {
	Threshold  *Threshold
	Assessment mapping.Assessment
	Bound      string // e.g. "above 180"
}

// Monitoring is the monitoring compliance of one administration.
type Monitoring struct {
	Administration mapping.Administration
	Protocol       *Protocol // nil when no protocol covers the drug
	// Reason says why nothing is required: no protocol, or not given.
	Reason       string
	Requirements []Requirement
	Crossings    []Crossing
}

// Met returns how many requirements were met and how many were due (met
// or missing: pending ones are not due yet).
func (m Monitoring) Met() (met, due int) {
	for _, r := range m.Requirements {
		switch r.Status {
		case Met:
			met++
			due++
		case Missing:
			due++
		}
	}
	return met, due
}

// Monitoring judges an administration's monitoring against its protocol,
// at now: each observation a monitoring rule requires, in the window it was
// due, met by a stored observation or missing, and the stop thresholds
// crossed by values taken during the session.
func (c *Checker) Monitoring(facts CourseFacts, adm mapping.Administration, now time.Time) (Monitoring, error) {
	m := Monitoring{Administration: adm, Protocol: c.f.Match(adm.Drug)}
	if m.Reason = c.unmonitored(m.Protocol, adm); m.Reason != "" {
		return m, nil
	}
	from, to := monitoringSpan(m.Protocol, adm, now)
	as, err := facts.SessionAssessments(adm.Patient, from, to, []string{adm.ID})
	if err != nil {
		return m, err
	}
	c.judge(&m, as, now)
	return m, nil
}

// sessionEnd is when a session ended: its end; for one still running,
// now; for one without an end, its start.
func sessionEnd(adm mapping.Administration, now time.Time) time.Time {
	switch {
	case adm.End.After(adm.Start):
		return adm.End
	case adm.Status == "in-progress" && now.After(adm.Start):
		return now
	}
	return adm.Start
}

// monitoringSpan is the time span in which a session's required
// observations may fall.
func monitoringSpan(p *Protocol, adm mapping.Administration, now time.Time) (from, to time.Time) {
	from, to = adm.Start, sessionEnd(adm, now)
	for _, mon := range p.Monitoring {
		for _, w := range windows(&mon, adm, now) {
			from, to = earlier(from, w[0]), later(to, w[1])
		}
	}
	return from, to
}

// judge fills the requirements and crossings of m from the assessments of
// the session's span. Readings part of another administration are not
// this session's.
func (c *Checker) judge(m *Monitoring, as []mapping.Assessment, now time.Time) {
	adm := m.Administration
	mine := make([]mapping.Assessment, 0, len(as))
	for _, a := range as {
		if a.Administration == "" || a.Administration == adm.ID {
			mine = append(mine, a)
		}
	}
	for i := range m.Protocol.Monitoring {
		mon := &m.Protocol.Monitoring[i]
		for _, w := range windows(mon, adm, now) {
			r := Requirement{Monitor: mon, From: w[0], To: w[1], Status: Missing}
			if found := pick(mine, mon, w[0], w[1], mon.When == "before"); found != nil {
				r.Status, r.Observation, r.Effective = Met, "Observation/"+found.Observation, found.Effective
			} else if !now.After(w[1]) {
				r.Status = Pending
			}
			m.Requirements = append(m.Requirements, r)
		}
	}
	start, end := adm.Start, sessionEnd(adm, now)
	for _, a := range mine {
		during := a.Administration == adm.ID || !a.Effective.Before(start) && !a.Effective.After(end)
		if !during || a.Value == nil {
			continue
		}
		for i := range m.Protocol.StopThresholds {
			t := &m.Protocol.StopThresholds[i]
			if crossed, bound, err := t.Crossed(a); err == nil && crossed {
				m.Crossings = append(m.Crossings, Crossing{Threshold: t, Assessment: a, Bound: bound})
			}
		}
	}
}

// windows returns the windows a monitoring rule requires an observation
// in: before the start; after the end; or during the session, one for
// each full interval of every — the last takes the remainder; a session
// still running has one more for the interval under way; a session
// without an end needs one, in its first interval.
func windows(mon *Monitor, adm mapping.Administration, now time.Time) [][2]time.Time {
	start, end := adm.Start, sessionEnd(adm, now)
	switch mon.When {
	case "before":
		return [][2]time.Time{{start.Add(-duration(*mon.Window)), start}}
	case "after":
		return [][2]time.Time{{end, end.Add(duration(*mon.Window))}}
	}
	every, elapsed := duration(*mon.Every), end.Sub(start)
	if every <= 0 {
		return [][2]time.Time{{start, end}}
	}
	running := adm.Status == "in-progress" && !adm.End.After(adm.Start)
	n := int(elapsed / every)
	if running && elapsed%every != 0 {
		n++
	}
	n = max(1, n)
	out := make([][2]time.Time, n)
	for i := range out { // half-open but the last, so that one reading meets one window
		out[i] = [2]time.Time{start.Add(time.Duration(i) * every), start.Add(time.Duration(i+1)*every - time.Nanosecond)}
	}
	if !running && end.After(start) {
		out[n-1][1] = end
	}
	return out
}

// pick returns the assessment of one of the monitor's codes taken in
// [from, to]: the latest when latest is set (a reading before a session),
// else the earliest.
func pick(as []mapping.Assessment, mon *Monitor, from, to time.Time, latest bool) *mapping.Assessment {
	var found *mapping.Assessment
	for i := range as {
		a := &as[i]
		if !hasCode(mon.Codes, a.Code) || a.Effective.Before(from) || a.Effective.After(to) {
			continue
		}
		if !latest {
			return a
		}
		found = a
	}
	return found
}
