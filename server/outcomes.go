package server

import (
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/mapping"
	"infusion/mapping/outcomes"
)

// maxOutcomeWindow bounds the outcome-window parameter, in days.
const maxOutcomeWindow = 365

// infusionOutcomes answers GET /$infusion-outcomes: the outcome figures of
// the courses the filters select, by the group-by dimensions, as a
// Parameters resource or CSV (one row per group).
func (s *Server) infusionOutcomes(c echo.Context) error {
	format, err := tabularFormat(c, formatJSON, formatCSV)
	if err != nil {
		return err
	}
	params := c.QueryParams()
	window := 30
	if v := params.Get("outcome-window"); v != "" {
		if window, err = strconv.Atoi(v); err != nil || window < 1 || window > maxOutcomeWindow {
			return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "outcome-window",
				"outcome-window %q is not a whole number of days from 1 to %d", v, maxOutcomeWindow)
		}
	}
	filter, by, err := outcomes.ParseFilter(params, true, "_format", "_pretty", "outcome-window")
	if err != nil {
		return err
	}
	// The store reads the cohort in parts, concurrently: a report each,
	// merged at the end.
	parts := make([]*outcomes.Report, runtime.GOMAXPROCS(0))
	for i := range parts {
		parts[i] = outcomes.NewReport(by)
	}
	err = s.store.Outcomes(c.Request().Context(), filter, time.Duration(window)*24*time.Hour, len(parts),
		func(part int, _ string, courses []outcomes.Summary) error {
			parts[part].Add(courses)
			return nil
		})
	if err != nil {
		return err
	}
	report := parts[0]
	for _, p := range parts[1:] {
		report.Merge(p)
	}
	report.Sort()
	out := []parameter{value("outcomeWindow", "Quantity", map[string]any{"value": window, "unit": "d",
		"system": "http://unitsofmeasure.org", "code": "d"}), str("mmeTable", s.mme.Title+" ("+s.mme.Version+")")}
	for _, g := range report.Groups {
		out = append(out, group("group", groupParts(g)))
	}
	if format == formatCSV {
		return writeCSV(c, "infusion-outcomes.csv", out)
	}
	return s.writeJSON(c, http.StatusOK, parameters(out))
}

// groupParts are the figures of one group, as its OperationDefinition
// describes them.
func groupParts(g *outcomes.Group) []parameter {
	var out []parameter
	for _, k := range g.Keys {
		switch k.By {
		case outcomes.ByCondition:
			system, c, _ := strings.Cut(k.Code, "|")
			if k.Code == "unknown" {
				system, c = "", k.Code
			}
			out = append(out, coding(string(k.By), mapping.Coding{System: system, Code: c, Display: k.Display}))
		case outcomes.ByMonth:
			out = append(out, str(string(k.By), k.Code))
		default:
			out = append(out, code(string(k.By), k.Code))
		}
	}
	out = append(out,
		integer("patients", g.Patients), integer("courses", g.Courses),
		integer("sessionsGiven", g.SessionsGiven), integer("sessionsStopped", g.SessionsStopped),
		integer("sessionsNotDone", g.SessionsNotDone), integer("patientsWithoutSessions", g.NoSessionsGiven))
	out = append(out, group("pain", painParts(g)))
	out = append(out, integer("sessionsWithSideEffect", g.SessionsWithSideEffect),
		share("sideEffectRate", g.SessionsWithSideEffect, g.SessionsGiven),
		integer("sessionsStoppedForSideEffect", g.StoppedForSideEffect),
		share("stoppedForSideEffectRate", g.StoppedForSideEffect, g.SessionsGiven))
	for _, se := range outcomes.Sorted(g.SideEffects) {
		out = append(out, group("sideEffect", []parameter{coding("code", se.Code), integer("sessions", se.Count),
			share("ratePerSession", se.Count, g.SessionsGiven)}))
	}
	for _, f := range outcomes.Sorted(g.Findings) {
		per100 := 0.0
		if g.SessionsGiven > 0 {
			per100 = float64(f.Count) * 100 / float64(g.SessionsGiven)
		}
		out = append(out, group("finding", []parameter{code("code", f.Code.Code), integer("count", f.Count),
			decimal("per100Sessions", per100)}))
	}
	return append(out, group("opioids", opioidParts(g)))
}

func painParts(g *outcomes.Group) []parameter {
	out := []parameter{integer("patientsWithData", g.PainData), integer("patientsWithoutBaseline", g.NoBaseline),
		integer("patientsWithoutFollowUp", g.NoFollowUp), integer("patientsWithBaselineZero", g.BaselineZero)}
	out = append(out, quartiles("baseline", g.Baseline)...)
	out = append(out, quartiles("last", g.Last)...)
	out = append(out, quartiles("change", g.Change)...)
	out = append(out, quartiles("percentChange", g.PercentChange)...)
	out = append(out, integer("responders30", g.Responders30), share("responders30Share", g.Responders30, g.PainData),
		integer("responders50", g.Responders50), share("responders50Share", g.Responders50, g.PainData),
		integer("respondedDuringSessions", g.RespondedInSession))
	return append(out, quartiles("sessionsToResponse", g.ToRespond)...)
}

func opioidParts(g *outcomes.Group) []parameter {
	out := []parameter{integer("patientsWithData", len(g.MMEBefore)), integer("patientsNotComputable", g.MMENotComputable)}
	if m, ok := outcomes.Mean(g.MMEBefore); ok {
		out = append(out, decimal("meanDailyMMEBefore", m))
	}
	if m, ok := outcomes.Mean(g.MMEAfter); ok {
		out = append(out, decimal("meanDailyMMEAfter", m))
	}
	return append(out, integer("patientsOnOpioidsBefore", g.OnOpioidsBefore), integer("patientsReduced50", g.MMEReduced50),
		share("reduced50Share", g.MMEReduced50, g.OnOpioidsBefore))
}

// quartiles are name+Q1, name+Median and name+Q3, left out without values.
func quartiles(name string, values []float64) []parameter {
	q1, median, q3, ok := outcomes.Quartiles(values)
	if !ok {
		return nil
	}
	return []parameter{decimal(name+"Q1", q1), decimal(name+"Median", median), decimal(name+"Q3", q3)}
}

func decimal(name string, v float64) parameter {
	return value(name, "Decimal", math.Round(v*1000)/1000)
}

// share is n over of, 0 to 1 with four decimals; left out when of is 0.
func share(name string, n, of int) parameter {
	if of == 0 {
		return nil
	}
	return value(name, "Decimal", math.Round(float64(n)/float64(of)*10000)/10000)
}

// writeCSV writes the "group" parameters of a Parameters as CSV, one row
// per group: a column per part, nested parts joined with "."; a repeated
// part keyed by its code ("sideEffect.422587007.sessions"). The other
// parameters come first as columns of their own, the same on every row.
func writeCSV(c echo.Context, filename string, params []parameter) error {
	var header []string
	col := map[string]int{}
	var rows []map[string]string
	var common = map[string]string{}
	add := func(row map[string]string, name, v string) {
		if _, ok := col[name]; !ok {
			col[name] = len(header)
			header = append(header, name)
		}
		row[name] = v
	}
	for _, p := range params {
		if p["name"] != "group" {
			add(common, p["name"].(string), scalar(p))
		}
	}
	for _, p := range params {
		if p["name"] == "group" {
			row := map[string]string{}
			flatten(p["part"].([]parameter), "", func(name, v string) { add(row, name, v) })
			rows = append(rows, row)
		}
	}
	c.Response().Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	c.Response().Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	w.UseCRLF = true // RFC 4180, as $infusion-tables
	w.Write(header)
	if len(rows) == 0 {
		rows = append(rows, map[string]string{})
	}
	for _, row := range rows {
		line := make([]string, len(header))
		for name, i := range col {
			if v, ok := row[name]; ok {
				line[i] = v
			} else {
				line[i] = common[name]
			}
		}
		w.Write(line)
	}
	w.Flush()
	return w.Error()
}

// flatten calls fn with the column name and text of each value in parts.
func flatten(parts []parameter, prefix string, fn func(name, v string)) {
	for _, p := range parts {
		name := prefix + p["name"].(string)
		sub, nested := p["part"].([]parameter)
		if !nested {
			fn(name, scalar(p))
			continue
		}
		if len(sub) > 0 && sub[0]["name"] == "code" {
			name += "." + keyOf(sub[0])
			sub = sub[1:]
		}
		flatten(sub, name+".", fn)
	}
}

// keyOf is the code of a code or Coding value.
func keyOf(p parameter) string {
	if c, ok := p["valueCoding"].(map[string]any); ok {
		return fmt.Sprint(c["code"])
	}
	return scalar(p)
}

// scalar is the text of a parameter's value: a Coding as system|code, a
// Quantity as its value.
func scalar(p parameter) string {
	for k, v := range p {
		if !strings.HasPrefix(k, "value") {
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			if q, ok := v["value"]; ok {
				return fmt.Sprint(q)
			}
			if v["system"] != nil {
				return fmt.Sprint(v["system"], "|", v["code"])
			}
			return fmt.Sprint(v["code"])
		default:
			return fmt.Sprint(v)
		}
	}
	return ""
}
