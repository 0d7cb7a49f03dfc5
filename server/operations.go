package server

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"infusion/conformance"
	"infusion/fhir"
	"infusion/mapping"
	"infusion/mapping/protocol"
	"infusion/mapping/ucum"
	"infusion/store"
)

// The infusion operations: monitoring compliance of an administration, the
// treatment course of an order, and a patient's courses. Each answers a
// Parameters resource that its OperationDefinition describes; all read the
// infusion model's tables.

// parameter is one Parameters.parameter or part: a name with a value[x]
// or parts.
type parameter map[string]any

func value(name, kind string, v any) parameter { return parameter{"name": name, "value" + kind: v} }

func group(name string, parts []parameter) parameter {
	return parameter{"name": name, "part": present(parts)}
}

func parameters(list []parameter) map[string]any {
	return map[string]any{"resourceType": "Parameters", "parameter": present(list)}
}

// present drops the parameters left out for having no value (nil).
func present(list []parameter) []parameter {
	return slices.DeleteFunc(list, func(p parameter) bool { return p == nil })
}

func str(name, s string) parameter         { return value(name, "String", s) }
func code(name, c string) parameter        { return value(name, "Code", c) }
func integer(name string, n int) parameter { return value(name, "Integer", n) }
func ref(name, reference string) parameter {
	return value(name, "Reference", map[string]any{"reference": reference})
}

// quantity is a Quantity rounded to three decimals, coded in UCUM when its
// unit is a UCUM code.
func quantity(name string, v float64, unit string) parameter {
	q := map[string]any{"value": round3(v)}
	if unit != "" {
		q["unit"] = unit
		if _, err := ucum.Parse(unit); err == nil {
			q["system"], q["code"] = "http://unitsofmeasure.org", unit
		}
	}
	return value(name, "Quantity", q)
}

func coding(name string, c mapping.Coding) parameter {
	m := map[string]any{}
	for k, v := range map[string]string{"system": c.System, "code": c.Code, "display": c.Display} {
		if v != "" {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil
	}
	return value(name, "Coding", m)
}

func period(name string, from, to time.Time) parameter {
	p := map[string]any{}
	if !from.IsZero() {
		p["start"] = fhir.FormatInstant(from)
	}
	if !to.IsZero() {
		p["end"] = fhir.FormatInstant(to)
	}
	if len(p) == 0 {
		return nil
	}
	return value(name, "Period", p)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// scoreUnit is the UCUM unit of a pain score: the observation's, else
// {score}.
func scoreUnit(q *mapping.Quantity) string {
	if q.Unit == "" {
		return "{score}"
	}
	return q.Unit
}

// monitoringOp answers GET /MedicationAdministration/{id}/$monitoring.
func (s *Server) monitoringOp(c echo.Context) error {
	facts, adm, err := modelRow(s, c, "MedicationAdministration", (*store.Facts).Administration)
	if err != nil {
		return err
	}
	m, err := s.checker.Monitoring(facts, *adm, time.Now())
	if err != nil {
		return err
	}
	out := []parameter{ref("administration", "MedicationAdministration/"+adm.ID), code("status", adm.Status)}
	if adm.Order != "" {
		out = append(out, ref("order", "MedicationRequest/"+adm.Order))
	}
	out = append(out, monitoringParts(m, true)...)
	return s.writeJSON(c, http.StatusOK, parameters(out))
}

// modelRow reads the model row of the current resource of typ named by the
// request's :id: 400 for a malformed id, 404 when unknown, 410 when
// deleted.
func modelRow[T any](s *Server, c echo.Context, typ string, load func(*store.Facts, string) (*T, error)) (*store.Facts, *T, error) {
	id, err := pathID(c)
	if err != nil {
		return nil, nil, err
	}
	ctx := c.Request().Context()
	v, err := s.store.Read(ctx, typ, id)
	if err != nil {
		return nil, nil, err
	}
	if v.Deleted {
		return nil, nil, gone(v)
	}
	facts := s.store.Facts(ctx)
	row, err := load(facts, id)
	if err == nil && row == nil { // written between the two reads
		err = fhir.Errorf(fhir.KindNotFound, fhir.IssueNotFound, "", "%s/%s has no infusion model row", typ, id)
	}
	return facts, row, err
}

// monitoringParts renders monitoring compliance: the counts, and with
// detail each required observation and each threshold crossed.
func monitoringParts(m protocol.Monitoring, detail bool) []parameter {
	var out []parameter
	if m.Protocol != nil {
		out = append(out, str("protocol", m.Protocol.ID+" "+m.Protocol.Version))
	}
	if m.Reason != "" {
		return append(out, str("reason", m.Reason))
	}
	met, due := m.Met()
	out = append(out, integer("required", len(m.Requirements)), integer("met", met),
		integer("missing", due-met), integer("pending", len(m.Requirements)-due))
	if due > 0 {
		out = append(out, quantity("compliance", float64(met)/float64(due)*100, "%"))
	}
	if detail {
		for _, r := range m.Requirements {
			out = append(out, group("observation", requirementParts(r)))
		}
	} else {
		out = append(out, missingByRule(m.Requirements)...)
	}
	for _, x := range m.Crossings {
		a := x.Assessment
		parts := []parameter{str("name", x.Threshold.Name), ref("observation", "Observation/"+a.Observation),
			quantity("value", a.Value.Value, a.Value.Unit), str("threshold", x.Bound+" "+x.Threshold.Unit),
			code("severity", string(x.Threshold.Severity)), value("effective", "DateTime", fhir.FormatInstant(a.Effective))}
		if detail {
			parts = append(parts, str("source", x.Threshold.Source))
		}
		out = append(out, group("thresholdCrossed", parts))
	}
	return out
}

// requirementParts renders one required observation.
func requirementParts(r protocol.Requirement) []parameter {
	parts := []parameter{str("name", r.Monitor.Name)}
	for _, cd := range r.Monitor.Codes {
		parts = append(parts, coding("code", mapping.Coding{System: cd.System, Code: cd.Code, Display: cd.Display}))
	}
	parts = append(parts, code("when", r.Monitor.When), period("window", r.From, r.To), code("status", string(r.Status)))
	if r.Observation != "" {
		parts = append(parts, ref("observation", r.Observation), value("effective", "DateTime", fhir.FormatInstant(r.Effective)))
	}
	return append(parts, str("source", r.Monitor.Source))
}

// missingByRule words, for each monitoring rule with missing
// observations, how many of its windows had none.
func missingByRule(reqs []protocol.Requirement) []parameter {
	type tally struct{ missing, windows int }
	var order []*protocol.Monitor
	counts := map[*protocol.Monitor]*tally{}
	for _, r := range reqs {
		t := counts[r.Monitor]
		if t == nil {
			t = &tally{}
			counts[r.Monitor] = t
			order = append(order, r.Monitor)
		}
		t.windows++
		if r.Status == protocol.Missing {
			t.missing++
		}
	}
	var out []parameter
	for _, mon := range order {
		if t := counts[mon]; t.missing > 0 {
			out = append(out, str("missingObservation", fmt.Sprintf("%s (%s): %d of %d missing", mon.Name, mon.When, t.missing, t.windows)))
		}
	}
	return out
}

// courseOp answers GET /MedicationRequest/{id}/$course.
func (s *Server) courseOp(c echo.Context) error {
	facts, order, err := modelRow(s, c, "MedicationRequest", (*store.Facts).Order)
	if err != nil {
		return err
	}
	co, err := s.checker.TreatmentCourse(facts, *order, time.Now())
	if err != nil {
		return err
	}
	return s.writeJSON(c, http.StatusOK, parameters(courseParts(co)))
}

// infusionSummary answers GET /Patient/{id}/$infusion-summary: the
// patient's treatment courses (none: an empty summary).
func (s *Server) infusionSummary(c echo.Context) error {
	pid := c.Param("pid")
	if !fhir.IsValidID(pid) {
		return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "", "%q is not a valid id (1 to 64 of A-Z, a-z, 0-9, - and .)", pid)
	}
	ctx := c.Request().Context()
	courses, err := s.checker.TreatmentCourses(s.store.Facts(ctx), "Patient/"+pid, time.Now())
	if err != nil {
		return err
	}
	given := 0
	for _, co := range courses {
		given += co.Given
	}
	out := []parameter{ref("patient", "Patient/"+pid), integer("courses", len(courses)), integer("sessionsGiven", given)}
	for _, co := range courses {
		out = append(out, group("course", courseParts(co)))
	}
	return s.writeJSON(c, http.StatusOK, parameters(out))
}

// courseParts renders a treatment course.
func courseParts(co protocol.TreatmentCourse) []parameter {
	o := co.Order
	out := []parameter{ref("order", "MedicationRequest/"+o.ID)}
	if o.Patient != "" {
		out = append(out, ref("patient", o.Patient))
	}
	out = append(out, code("status", o.Status), coding("medication", o.Drug.Coding), code("drugClass", string(o.Drug.Class)))
	if co.Protocol != nil {
		out = append(out, str("protocol", co.Protocol.ID+" "+co.Protocol.Version))
	}
	if o.Setting != "" {
		out = append(out, code("setting", string(o.Setting)))
	}
	if co.Planned > 0 {
		out = append(out, integer("sessionsPlanned", co.Planned))
	}
	for _, s := range co.Sessions {
		out = append(out, group("session", sessionParts(s, co.Planned)))
	}
	out = append(out, integer("sessionsGiven", co.Given), integer("sessionsStopped", co.Stopped),
		integer("sessionsNotDone", co.NotDone))
	if p := co.Completion(); p != nil {
		out = append(out, quantity("completion", *p, "%"))
	}
	if co.DoseCounted > 0 {
		out = append(out, quantity("cumulativeDose", co.CumulativeMg, "mg"))
	}
	out = append(out, integer("cumulativeDoseSessions", co.DoseCounted))
	if co.PerKgCounted > 0 {
		out = append(out, quantity("cumulativeDosePerKg", co.CumulativeMgPerKg, "mg/kg"))
	}
	out = append(out, integer("cumulativeDosePerKgSessions", co.PerKgCounted))
	if co.MeanPainChange != nil {
		out = append(out, quantity("meanPainChange", *co.MeanPainChange, "{score}"))
	}
	out = append(out, integer("painPairs", co.PainPairs))
	for _, f := range co.Findings {
		out = append(out, value("finding", "Reference", map[string]any{"reference": findingType + "/" + f.ID,
			"display": fmt.Sprintf("%s %s (%s)", f.Severity, f.Code, f.Rule)}))
	}
	return out
}

// sessionParts renders one session of a course.
func sessionParts(s protocol.Session, planned int) []parameter {
	a := s.Administration
	var out []parameter
	if s.Number > 0 {
		out = append(out, integer("number", s.Number))
		if planned > 0 {
			out = append(out, str("label", fmt.Sprintf("session %d of %d", s.Number, planned)))
		}
	}
	out = append(out, ref("administration", "MedicationAdministration/"+a.ID), code("status", a.Status))
	for _, r := range a.StatusReason {
		out = append(out, coding("statusReason", r))
	}
	end := a.End
	if !end.After(a.Start) {
		end = time.Time{} // an effectiveDateTime: a start only
	}
	out = append(out, period("period", a.Start, end))
	if s.DurationMinutes > 0 {
		out = append(out, quantity("duration", s.DurationMinutes, "min"))
	}
	if a.Setting != "" {
		out = append(out, code("setting", string(a.Setting)))
	}
	if s.Dose != nil {
		out = append(out, quantity("dose", s.Dose.Mg, "mg"))
		if s.Dose.MgPerKg != nil {
			out = append(out, quantity("dosePerKg", *s.Dose.MgPerKg, "mg/kg"))
		}
		if s.Dose.Via != "" {
			out = append(out, str("doseCalculation", s.Dose.Via))
		}
	} else if s.DoseNote != "" {
		out = append(out, str("doseNote", s.DoseNote))
	}
	if a.Rate != nil {
		out = append(out, quantity("rate", a.Rate.Value, a.Rate.Unit))
	}
	if p := s.PainBefore; p != nil {
		out = append(out, quantity("painBefore", p.Value.Value, scoreUnit(p.Value)), ref("painBeforeObservation", "Observation/"+p.Observation))
	}
	if p := s.PainAfter; p != nil {
		out = append(out, quantity("painAfter", p.Value.Value, scoreUnit(p.Value)), ref("painAfterObservation", "Observation/"+p.Observation))
	}
	if d, ok := s.PainChange(); ok {
		out = append(out, quantity("painChange", d, scoreUnit(s.PainBefore.Value)))
		if before := s.PainBefore.Value.Value; before != 0 {
			out = append(out, quantity("painChangePercent", d/before*100, "%"))
		}
	}
	for _, se := range s.SideEffects {
		parts := []parameter{coding("code", se.Code), ref("observation", "Observation/"+se.Observation)}
		if se.ValueCode.Code != "" {
			parts = append(parts, coding("severity", se.ValueCode))
		}
		out = append(out, group("sideEffect", parts))
	}
	return append(out, group("monitoring", monitoringParts(s.Monitoring, false)))
}

// operationDefinition answers GET /OperationDefinition/{name}.
func (s *Server) operationDefinition(c echo.Context) error {
	def, ok := conformance.OperationDefinition(c.Param("name"))
	if !ok {
		return fhir.Errorf(fhir.KindNotFound, fhir.IssueNotFound, "", "OperationDefinition/%s is not an operation of this server", c.Param("name"))
	}
	return s.writeJSON(c, http.StatusOK, def)
}
