package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"infusion/mapping/outcomes"
	"infusion/mapping/synth"
	"infusion/server"
	"infusion/store"
)

const rxnorm, snomed = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://snomed.info/sct"

// outcomeCohort is a small cohort whose every figure is worked out by hand
// in TestOutcomes.
//
//	A  ketamine for CRPS, clinic. S1 03-10 09:00–13:00 completed; S2 03-11
//	   09:00–11:00 stopped for nausea; S3 03-12 not-done. Pain 9 (03-01), 8
//	   (03-10 08:50: baseline), 6 after S1 (part of it: 25 %), 5 after S2
//	   (37.5 %: response at session 2), 4 on 04-05 (outcome: −4, −50 %).
//	   Headache during S1 (part of no session, inside its span); dizziness
//	   denied during S1; nausea part of S2. Oxycodone 10 mg 4×/d to 03-31;
//	   methadone 10 mg 2×/d from 04-01 (validityPeriod).
//	B  lidocaine for fibromyalgia, at home. T1 05-05 10:00–11:00 and T2
//	   05-12 10:00–11:00 completed. Pain 6 before T1 (baseline), 6 after T1
//	   and 5 after T2 (part of them), 5 on 06-01 (outcome: −1, −16.667 %).
//	   Nausea part of T1. Morphine 30 mg 2×/d authored 04-10
//	   for 30 days; a fentanyl patch 12 ug/h from 06-01.
//	C  ketamine for CRPS, clinic. U1 03-20 09:00–13:00 completed; no score
//	   before it, 3 on 04-01. Tramadol 50 mg 4×/d to 03-31; buprenorphine
//	   (left out of MME).
//	D  ketamine, no condition, its one administration not-done.
var outcomeCohort = []struct{ typ, id, body string }{
	{"MedicationRequest", "a-ket", course("A", "6130", "ketamine", snomed+"|128200000|Complex regional pain syndrome", "outpatient", "2026-03-01")},
	{"MedicationAdministration", "a-s1", session("A", "a-ket", "6130", "completed", "2026-03-10T09:00:00Z", "2026-03-10T13:00:00Z", "")},
	{"MedicationAdministration", "a-s2", session("A", "a-ket", "6130", "stopped", "2026-03-11T09:00:00Z", "2026-03-11T11:00:00Z", "422587007")},
	{"MedicationAdministration", "a-s3", session("A", "a-ket", "6130", "not-done", "2026-03-12T09:00:00Z", "2026-03-12T09:00:00Z", "")},
	{"Observation", "a-p0", painScore("A", "2026-03-01T09:00:00Z", 9, "")},
	{"Observation", "a-p1", painScore("A", "2026-03-10T08:50:00Z", 8, "")},
	{"Observation", "a-p2", painScore("A", "2026-03-10T13:15:00Z", 6, "a-s1")},
	{"Observation", "a-p3", painScore("A", "2026-03-11T11:10:00Z", 5, "a-s2")},
	{"Observation", "a-p4", painScore("A", "2026-04-05T09:00:00Z", 4, "")},
	{"Observation", "a-headache", sideEffectObs("A", "25064002", "Headache", "2026-03-10T10:00:00Z", "", true)},
	{"Observation", "a-dizzy", sideEffectObs("A", "404640003", "Dizziness", "2026-03-10T10:30:00Z", "", false)},
	{"Observation", "a-nausea", sideEffectObs("A", "422587007", "Nausea", "2026-03-11T10:30:00Z", "a-s2", true)},
	{"MedicationRequest", "a-oxy", opioidOrder("A", "7804", "oxycodone", 10, "mg", 4, "26643006", `"timing":{"repeat":{"boundsPeriod":{"start":"2026-01-01","end":"2026-03-31"},"frequency":4,"period":1,"periodUnit":"d"}}`, "")},
	{"MedicationRequest", "a-methadone", opioidOrder("A", "6813", "methadone", 10, "mg", 2, "26643006", `"timing":{"repeat":{"frequency":2,"period":1,"periodUnit":"d"}}`,
		`"dispenseRequest":{"validityPeriod":{"start":"2026-04-01","end":"2026-12-31"}}`)},

	{"MedicationRequest", "b-lid", course("B", "6387", "lidocaine", snomed+"|203082005|Fibromyalgia", "community", "2026-05-01")},
	{"MedicationAdministration", "b-t1", session("B", "b-lid", "6387", "completed", "2026-05-05T10:00:00Z", "2026-05-05T11:00:00Z", "")},
	{"MedicationAdministration", "b-t2", session("B", "b-lid", "6387", "completed", "2026-05-12T10:00:00Z", "2026-05-12T11:00:00Z", "")},
	{"Observation", "b-p1", painScore("B", "2026-05-05T09:50:00Z", 6, "")},
	{"Observation", "b-p2", painScore("B", "2026-05-05T11:10:00Z", 6, "b-t1")},
	{"Observation", "b-p3", painScore("B", "2026-05-12T11:10:00Z", 5, "b-t2")},
	{"Observation", "b-p4", painScore("B", "2026-06-01T09:00:00Z", 5, "")},
	{"Observation", "b-nausea", sideEffectObs("B", "422587007", "Nausea", "2026-05-05T10:30:00Z", "b-t1", true)},
	{"MedicationRequest", "b-morphine", opioidOrder("B", "7052", "morphine", 30, "mg", 2, "26643006", `"timing":{"repeat":{"frequency":2,"period":1,"periodUnit":"d"}}`,
		`"dispenseRequest":{"expectedSupplyDuration":{"value":30,"unit":"d","system":"http://unitsofmeasure.org","code":"d"}}`)},
	{"MedicationRequest", "b-fentanyl", opioidOrder("B", "4337", "fentanyl", 12, "ug/h", 0, "45890007", `"timing":{"repeat":{"boundsPeriod":{"start":"2026-06-01","end":"2026-12-31"},"frequency":1,"period":3,"periodUnit":"d"}}`, "")},

	{"MedicationRequest", "c-ket", course("C", "6130", "ketamine", snomed+"|128200000|Complex regional pain syndrome", "outpatient", "2026-03-01")},
	{"MedicationAdministration", "c-u1", session("C", "c-ket", "6130", "completed", "2026-03-20T09:00:00Z", "2026-03-20T13:00:00Z", "")},
	{"Observation", "c-p1", painScore("C", "2026-04-01T09:00:00Z", 3, "")},
	{"MedicationRequest", "c-tramadol", opioidOrder("C", "10689", "tramadol", 50, "mg", 4, "26643006", `"timing":{"repeat":{"boundsPeriod":{"start":"2026-01-01","end":"2026-03-31"},"frequency":4,"period":1,"periodUnit":"d"}}`, "")},
	{"MedicationRequest", "c-bup", opioidOrder("C", "1819", "buprenorphine", 8, "mg", 1, "37161004", `"timing":{"repeat":{"boundsPeriod":{"start":"2026-01-01","end":"2026-12-31"},"frequency":1,"period":1,"periodUnit":"d"}}`, "")},

	{"MedicationRequest", "d-ket", course("D", "6130", "ketamine", "", "outpatient", "2026-03-01")},
	{"MedicationAdministration", "d-s1", session("D", "d-ket", "6130", "not-done", "2026-03-05T09:00:00Z", "2026-03-05T09:00:00Z", "")},
}

func course(patient, drug, name, condition, category, authored string) string {
	reason := ""
	if condition != "" {
		parts := strings.SplitN(condition, "|", 3)
		reason = fmt.Sprintf(`,"reasonCode":[{"coding":[{"system":%q,"code":%q,"display":%q}]}]`, parts[0], parts[1], parts[2])
	}
	return fmt.Sprintf(`{"resourceType":"MedicationRequest","status":"active","intent":"order",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/medicationrequest-category","code":%q}]}],
		"medicationCodeableConcept":{"coding":[{"system":%q,"code":%q,"display":%q}]},
		"subject":{"reference":"Patient/%s"},"authoredOn":%q%s,
		"dosageInstruction":[{"route":{"coding":[{"system":"http://snomed.info/sct","code":"47625008"}]},
		"doseAndRate":[{"rateQuantity":{"value":0.3,"unit":"mg/kg/h","system":"http://unitsofmeasure.org","code":"mg/kg/h"}}]}]}`,
		category, rxnorm, drug, name, patient, authored, reason)
}

func session(patient, order, drug, status, start, end, reason string) string {
	extra := ""
	if reason != "" {
		extra = fmt.Sprintf(`,"statusReason":[{"coding":[{"system":"http://snomed.info/sct","code":%q}]}]`, reason)
	}
	return fmt.Sprintf(`{"resourceType":"MedicationAdministration","status":%q,
		"medicationCodeableConcept":{"coding":[{"system":%q,"code":%q}]},"subject":{"reference":"Patient/%s"},
		"effectivePeriod":{"start":%q,"end":%q},"request":{"reference":"MedicationRequest/%s"}%s}`,
		status, rxnorm, drug, patient, start, end, order, extra)
}

func partOf(admin string) string {
	if admin == "" {
		return ""
	}
	return fmt.Sprintf(`,"partOf":[{"reference":"MedicationAdministration/%s"}]`, admin)
}

func painScore(patient, at string, v float64, admin string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"72514-3"}]},
		"subject":{"reference":"Patient/%s"},"effectiveDateTime":%q,"valueQuantity":{"value":%g,"unit":"{score}","system":"http://unitsofmeasure.org","code":"{score}"}%s}`,
		patient, at, v, partOf(admin))
}

func sideEffectObs(patient, code, display, at, admin string, present bool) string {
	return fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":%q,"display":%q}]},
		"subject":{"reference":"Patient/%s"},"effectiveDateTime":%q,"valueBoolean":%t%s}`, code, display, patient, at, present, partOf(admin))
}

func opioidOrder(patient, drug, name string, dose float64, unit string, perDay int, route, timing, dispense string) string {
	if dispense != "" {
		dispense = "," + dispense
	}
	authored := "2026-04-10T00:00:00Z"
	return fmt.Sprintf(`{"resourceType":"MedicationRequest","status":"active","intent":"order",
		"medicationCodeableConcept":{"coding":[{"system":%q,"code":%q,"display":%q}]},"subject":{"reference":"Patient/%s"},"authoredOn":%q,
		"dosageInstruction":[{"route":{"coding":[{"system":"http://snomed.info/sct","code":%q}]},%s,
		"doseAndRate":[{"doseQuantity":{"value":%g,"unit":%q,"system":"http://unitsofmeasure.org","code":%q}}]}]%s}`,
		rxnorm, drug, name, patient, authored, route, timing, dose, unit, unit, dispense)
}

// outcomeFigures flattens a $infusion-outcomes answer: group i's parts as
// "i.name" (nested "i.pain.name", repeated "i.sideEffect.<code>.name").
func outcomeFigures(t *testing.T, r response) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	out := map[string]any{}
	var walk func(prefix string, parts []any)
	walk = func(prefix string, parts []any) {
		for _, p := range parts {
			p := p.(map[string]any)
			name := prefix + p["name"].(string)
			if sub, ok := p["part"].([]any); ok {
				first := sub[0].(map[string]any)
				if first["name"] == "code" {
					if c, ok := first["valueCoding"].(map[string]any); ok {
						name += "." + c["code"].(string)
					} else {
						name += "." + first["valueCode"].(string)
					}
				}
				walk(name+".", sub)
				continue
			}
			for k, v := range p {
				if strings.HasPrefix(k, "value") {
					out[name] = v
				}
			}
		}
	}
	groups := 0
	for _, p := range r.json(t)["parameter"].([]any) {
		if p := p.(map[string]any); p["name"] == "group" {
			walk(fmt.Sprint(groups, "."), p["part"].([]any))
			groups++
		}
	}
	out["groups"] = float64(groups)
	return out
}

func TestOutcomes(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	for _, r := range outcomeCohort {
		if res := ts.do(t, http.MethodPut, "/"+r.typ+"/"+r.id, withID(t, r.body, r.id)); res.status != http.StatusCreated {
			t.Fatalf("%s/%s: %d %s", r.typ, r.id, res.status, res.body)
		}
	}
	// Every open finding is about one of the courses' orders or sessions.
	findings := map[string]float64{}
	for _, e := range asList(ts.do(t, http.MethodGet, "/DetectedIssue?status:not=cancelled&_count=100", "").json(t)["entry"]) {
		code := e.(map[string]any)["resource"].(map[string]any)["code"].(map[string]any)
		key, _ := code["text"].(string)
		if cs := asList(code["coding"]); len(cs) > 0 {
			key = cs[0].(map[string]any)["code"].(string)
		}
		findings[key]++
	}

	all := outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes", ""))
	want := map[string]any{
		"groups": 1.0, "0.patients": 4.0, "0.courses": 4.0,
		"0.sessionsGiven":   5.0, // A S1, S2; B T1, T2; C U1
		"0.sessionsStopped": 1.0, "0.sessionsNotDone": 2.0, "0.patientsWithoutSessions": 1.0,
		"0.pain.patientsWithData": 2.0, "0.pain.patientsWithoutBaseline": 1.0, "0.pain.patientsWithoutFollowUp": 0.0,
		"0.pain.baselineQ1": 6.5, "0.pain.baselineMedian": 7.0, "0.pain.baselineQ3": 7.5, // 8 and 6
		"0.pain.lastQ1": 3.5, "0.pain.lastMedian": 4.0, "0.pain.lastQ3": 4.5, // 4, 5, 3
		"0.pain.changeQ1": -3.25, "0.pain.changeMedian": -2.5, "0.pain.changeQ3": -1.75, // −4, −1
		"0.pain.percentChangeQ1": -41.667, "0.pain.percentChangeMedian": -33.333, "0.pain.percentChangeQ3": -25.0, // −50, −16.667
		"0.pain.responders30": 1.0, "0.pain.responders30Share": 0.5, "0.pain.responders50": 1.0, "0.pain.responders50Share": 0.5,
		"0.pain.respondedDuringSessions": 1.0, "0.pain.sessionsToResponseMedian": 2.0,
		"0.sessionsWithSideEffect": 3.0, "0.sideEffectRate": 0.6, // S1 headache, S2 nausea, T1 nausea
		"0.sideEffect.422587007.sessions": 2.0, "0.sideEffect.422587007.ratePerSession": 0.4,
		"0.sideEffect.25064002.sessions": 1.0, "0.sideEffect.25064002.ratePerSession": 0.2,
		"0.sessionsStoppedForSideEffect": 1.0, "0.stoppedForSideEffectRate": 0.2,
		// MME a day. Before: A oxycodone 10 × 4 × 1.5 = 60 all 30 days; B
		// morphine 30 × 2 × 1 = 60 from 04-10 00:00 to the first session
		// 05-05 10:00, 25.417 of 30 days = 50.833; C tramadol 50 × 4 × 0.2
		// = 40. After (days 30–90): A methadone 10 × 2 × 4.7 = 94; B
		// fentanyl 12 ug/h × 2.4 = 28.8; C none (buprenorphine left out).
		"0.opioids.patientsWithData": 3.0, "0.opioids.patientsNotComputable": 0.0,
		"0.opioids.meanDailyMMEBefore":      50.278,                                                                      // (60 + 50.833 + 40) / 3
		"0.opioids.meanDailyMMEAfter":       40.933,                                                                      // (94 + 28.8 + 0) / 3
		"0.opioids.patientsOnOpioidsBefore": 3.0, "0.opioids.patientsReduced50": 1.0, "0.opioids.reduced50Share": 0.3333, // C: 40 → 0
	}
	if len(findings) == 0 {
		t.Fatal("the cohort raised no finding")
	}
	for code, n := range findings {
		want["0.finding."+code+".count"] = n
		want["0.finding."+code+".per100Sessions"] = float64(int(n*100/5*1000+0.5)) / 1000
	}
	checkFigures(t, "all", all, want)

	byClass := outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes?group-by=drug-class", ""))
	checkFigures(t, "by drug class", byClass, map[string]any{"groups": 2.0,
		"0.drug-class": "ketamine", "0.patients": 3.0, "0.courses": 3.0, "0.sessionsGiven": 3.0, "0.sideEffect.422587007.ratePerSession": 0.3333,
		"1.drug-class": "lidocaine", "1.patients": 1.0, "1.sessionsGiven": 2.0, "1.sideEffect.422587007.ratePerSession": 0.5,
		"1.pain.percentChangeMedian": -16.667, "1.pain.responders30": 0.0, "1.opioids.meanDailyMMEBefore": 50.833})

	for _, tc := range []struct {
		query    string
		patients float64
	}{
		{"drug-class=lidocaine", 1},
		{"drug-class=ketamine,lidocaine", 4},
		{"condition=" + snomed + "|128200000", 2},
		{"condition=203082005", 1},
		{"medication=" + rxnorm + "|6130", 3},
		{"setting=home", 1},
		{"setting=clinic", 3},
		{"period=ge2026-05-01", 1},
		{"period=le2026-03-15", 2}, // A starts 03-10, D (no session) at its authoredOn 03-01
		{"period=ge2026-03&period=le2026-03", 3},
		{"drug-class=gabapentinoid", 0},
	} {
		got := outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes?"+tc.query, ""))
		if got["0.patients"] != tc.patients {
			t.Errorf("%s: %v patients, want %v", tc.query, got["0.patients"], tc.patients)
		}
	}
	// An empty cohort: zeros and counts, no rates.
	empty := outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes?drug-class=gabapentinoid", ""))
	checkFigures(t, "empty", empty, map[string]any{"groups": 1.0, "0.courses": 0.0, "0.sessionsGiven": 0.0, "0.pain.patientsWithData": 0.0})
	if _, ok := empty["0.sideEffectRate"]; ok {
		t.Errorf("a rate over no session: %v", empty)
	}
	if got := outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes?drug-class=gabapentinoid&group-by=month", "")); got["groups"] != 0.0 {
		t.Errorf("empty cohort by month: %v groups", got["groups"])
	}
	byMonth := outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes?group-by=month,setting", ""))
	checkFigures(t, "by month and setting", byMonth, map[string]any{"groups": 2.0,
		"0.setting": "clinic", "0.month": "2026-03", "0.patients": 3.0, "1.setting": "home", "1.month": "2026-05"})
	// A day's outcome window misses A's follow-up (04-05 is 25 days after
	// S2); the score after S2 is part of it, not an outcome.
	short := outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes?drug-class=ketamine&outcome-window=1", ""))
	checkFigures(t, "outcome-window=1", short, map[string]any{"0.pain.patientsWithData": 0.0, "0.pain.patientsWithoutFollowUp": 1.0,
		"0.pain.patientsWithoutBaseline": 1.0, "0.pain.responders30": 0.0, "0.pain.respondedDuringSessions": 1.0})
	if _, ok := short["0.pain.lastMedian"]; ok {
		t.Errorf("outcome-window=1: an outcome score %v", short["0.pain.lastMedian"])
	}

	for _, accept := range []string{"_format=csv", ""} {
		headers := []string{}
		if accept == "" {
			headers = append(headers, "Accept: text/csv")
		}
		r := ts.do(t, http.MethodGet, "/$infusion-outcomes?group-by=drug-class&"+accept, "", headers...)
		lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || len(lines) != 3 ||
			!strings.Contains(lines[0], "drug-class,patients,courses") || !strings.Contains(lines[0], "pain.responders30,") ||
			!strings.HasPrefix(lines[1], "30,CDC 2022 MME conversion factors (2022),ketamine,3,3,") {
			t.Errorf("CSV (%s): %d %s\n%s", accept, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
}

func checkFigures(t *testing.T, name string, got, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %v, want %v", name, k, got[k], v)
		}
	}
}

func TestOutcomesErrors(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	for _, tc := range []struct {
		query      string
		status     int
		expression string
	}{
		{"colour=red", http.StatusBadRequest, "colour"},
		{"group-by=week", http.StatusBadRequest, "group-by"},
		{"drug-class=opioid", http.StatusBadRequest, "drug-class"},
		{"setting=moon", http.StatusBadRequest, "setting"},
		{"period=2026-01-01", http.StatusBadRequest, "period"},
		{"period=ge2026-13-01", http.StatusBadRequest, "period"},
		{"period=ge2026-06-01&period=le2026-01-01", http.StatusBadRequest, "period"},
		{"outcome-window=0", http.StatusBadRequest, "outcome-window"},
		{"outcome-window=many", http.StatusBadRequest, "outcome-window"},
		{"condition=", http.StatusBadRequest, "condition"},
		{"_format=xml", http.StatusNotAcceptable, "_format"},
	} {
		r := ts.do(t, http.MethodGet, "/$infusion-outcomes?"+tc.query, "")
		if r.status != tc.status || !strings.Contains(strings.Join(r.issueExpressions(t), " "), tc.expression) {
			t.Errorf("%s: %d %s, want %d naming %s", tc.query, r.status, r.body, tc.status, tc.expression)
		}
	}
	if r := ts.do(t, http.MethodGet, "/$infusion-outcomes", "", "Accept: application/xml"); r.status != http.StatusNotAcceptable {
		t.Errorf("Accept: application/xml: %d", r.status)
	}
}

// TestOutcomesRecoverRates feeds a generated cohort with known rates and
// checks that $infusion-outcomes finds them within three standard errors.
func TestOutcomesRecoverRates(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "infusion.db")
	ts := newTestServer(t, server.Config{DBPath: dbPath})
	rates := synth.DefaultRates()
	rates.Response = map[string]float64{"ketamine": 0.6, "lidocaine": 0.3, "vitamin-nutrient": 0.2, "gabapentinoid": 0.5}
	rates.Nausea, rates.Stop, rates.Headache = 0.2, 0.5, 0.1
	ts.loadCohort(t, synth.New(synth.Config{Patients: 240, Seed: 11, Rates: &rates}), 0, 240)

	within := func(name string, got any, p float64, n float64) {
		t.Helper()
		g, ok := got.(float64)
		if se := math.Sqrt(p * (1 - p) / n); !ok || math.Abs(g-p) > 3*se {
			t.Errorf("%s = %v, want %.3f ± %.3f (n %v)", name, got, p, 3*se, n)
		}
	}
	all := outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes", ""))
	sessions := all["0.sessionsGiven"].(float64)
	within("nausea rate", all["0.sideEffect.422587007.ratePerSession"], rates.Nausea, sessions)
	within("headache rate", all["0.sideEffect.25064002.ratePerSession"], rates.Headache, sessions)
	within("stopped for a side effect", all["0.stoppedForSideEffectRate"], rates.Nausea*rates.Stop, sessions)
	if all["0.patients"] != 240.0 || all["0.pain.patientsWithData"] != 240.0 {
		t.Errorf("%v patients, %v with pain data; want 240", all["0.patients"], all["0.pain.patientsWithData"])
	}
	// The store reads the cohort in concurrent parts: any number of parts
	// gives every patient once, with the same summaries.
	st, err := store.Open(context.Background(), dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var whole map[string][]outcomes.Summary
	for _, parts := range []int{1, 3, 7} {
		var mu sync.Mutex
		got := map[string][]outcomes.Summary{}
		err := st.Outcomes(context.Background(), outcomes.Filter{}, 30*24*time.Hour, parts, func(_ int, patient string, courses []outcomes.Summary) error {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := got[patient]; dup {
				t.Errorf("%d parts: %s twice", parts, patient)
			}
			got[patient] = courses
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if whole == nil {
			whole = got
		}
		if len(got) != 240 || !reflect.DeepEqual(got, whole) {
			t.Errorf("%d parts: %d patients, the same summaries as one part: %v", parts, len(got), reflect.DeepEqual(got, whole))
		}
	}

	byClass := outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes?group-by=drug-class", ""))
	for i := range int(byClass["groups"].(float64)) {
		class, n := byClass[fmt.Sprint(i, ".drug-class")].(string), byClass[fmt.Sprint(i, ".pain.patientsWithData")].(float64)
		within(class+" responders (50 %)", byClass[fmt.Sprint(i, ".pain.responders50Share")], rates.Response[class], n)
	}
}

// loadCohort stores patients first..first+n-1 of a generator through
// transaction Bundles of PUTs, and returns how many resources it sent.
func (ts *testServer) loadCohort(t testing.TB, gen *synth.Generator, first, n int) int {
	t.Helper()
	sent := 0
	for i := first; i < first+n; i += 20 {
		var entries []string
		for j := i; j < min(i+20, first+n); j++ {
			for _, r := range gen.Patient(j) {
				entries = append(entries, fmt.Sprintf(`{"resource":%s,"request":{"method":"PUT","url":"%s/%s"}}`, r.JSON, r.Type, r.ID))
			}
		}
		sent += len(entries)
		body := `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`
		if r := ts.do(t, http.MethodPost, "/", body); r.status != http.StatusOK {
			t.Fatalf("loading patients %d…: %d %s", i, r.status, r.body)
		}
	}
	return sent
}

// TestOutcomeSummariesFollowWrites changes a generated cohort through
// every kind of write the summaries depend on (an observation moved to
// another patient, a session deleted or stopped for nausea, a score
// entered in error, side effects part of a session and found by time, a
// new baseline, a course deleted, an opioid dose doubled, a rejected
// transaction, concurrent updates of which some fail), and checks that
// the summaries the writer kept give the same figures as summaries made
// again from scratch.
func TestOutcomeSummariesFollowWrites(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "infusion.db")
	queries := []string{"", "?group-by=drug-class,condition,setting,month", "?drug-class=ketamine,lidocaine&outcome-window=90&group-by=setting"}
	figures := func(ts *testServer) []map[string]any {
		var out []map[string]any
		for _, q := range queries {
			out = append(out, outcomeFigures(t, ts.do(t, http.MethodGet, "/$infusion-outcomes"+q, "")))
		}
		return out
	}
	gen := synth.New(synth.Config{Patients: 40, Seed: 5})
	// find returns the JSON of the first (or, with last, the last)
	// resource of a type whose JSON contains all of the given strings, of
	// patient i or, when it has none, of the next patient that has one.
	find := func(i int, typ string, last bool, contains ...string) map[string]any {
		t.Helper()
		for ; i < 40; i++ {
			var found []byte
			for _, r := range gen.Patient(i) {
				ok := r.Type == typ
				for _, c := range contains {
					ok = ok && strings.Contains(string(r.JSON), c)
				}
				if ok && (found == nil || last) {
					found = r.JSON
				}
			}
			if found != nil {
				var m map[string]any
				if err := json.Unmarshal(found, &m); err != nil {
					t.Fatal(err)
				}
				return m
			}
		}
		t.Fatalf("no %s with %q", typ, contains)
		return nil
	}
	put := func(ts *testServer, res map[string]any, status int, headers ...string) {
		t.Helper()
		body, _ := json.Marshal(res)
		if r := ts.do(t, http.MethodPut, fmt.Sprintf("/%s/%s", res["resourceType"], res["id"]), string(body), headers...); r.status != status {
			t.Fatalf("PUT %s/%s: %d %s, want %d", res["resourceType"], res["id"], r.status, r.body, status)
		}
	}
	const pain = `"72514-3"`

	app, err := server.New(context.Background(), server.Config{DBPath: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: httptest.NewServer(app.Handler()), app: app}
	ts.loadCohort(t, gen, 0, 40)
	before := figures(ts)

	// The last pain score of a patient, usually the outcome, moved to
	// the next one.
	moved := find(0, "Observation", true, pain)
	moved["subject"] = find(1, "Observation", false, pain)["subject"]
	put(ts, moved, http.StatusOK)
	if r := ts.do(t, http.MethodDelete, "/MedicationAdministration/"+find(2, "MedicationAdministration", false)["id"].(string), ""); r.status != http.StatusOK && r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	inError := find(21, "Observation", false, `"422587007"`) // nausea
	inError["status"] = "entered-in-error"
	put(ts, inError, http.StatusOK)
	// A side effect deleted.
	if r := ts.do(t, http.MethodDelete, "/Observation/"+find(24, "Observation", false, `"422587007"`)["id"].(string), ""); r.status != http.StatusOK && r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	// A course moved to another patient.
	course := find(36, "MedicationRequest", false, `"47625008"`)
	course["subject"] = find(37, "MedicationRequest", false)["subject"]
	put(ts, course, http.StatusOK)
	// A session moved to another patient's course.
	session := find(38, "MedicationAdministration", false, `"completed"`)
	session["request"] = map[string]any{"reference": "MedicationRequest/" + find(39, "MedicationRequest", false, `"47625008"`)["id"].(string)}
	put(ts, session, http.StatusOK)
	// A new side effect: a headache during a session that had none.
	headache := newSideEffect(t, gen, 29, "25064002", "Headache")
	if r := ts.do(t, http.MethodPost, "/Observation", mustJSON(headache)); r.status != http.StatusCreated {
		t.Fatalf("a headache: %d %s", r.status, r.body)
	}
	// The same, part of no session: found by its time.
	dizzy := newSideEffect(t, gen, 30, "404640003", "Dizziness")
	delete(dizzy, "partOf")
	if r := ts.do(t, http.MethodPost, "/Observation", mustJSON(dizzy)); r.status != http.StatusCreated {
		t.Fatalf("dizziness: %d %s", r.status, r.body)
	}
	// A new baseline: a score of 10, part of no session, an hour before a
	// patient's first session.
	first := find(33, "MedicationAdministration", false, `"completed"`)
	start, err := time.Parse(time.RFC3339, first["effectivePeriod"].(map[string]any)["start"].(string))
	if err != nil {
		t.Fatal(err)
	}
	baseline := find(33, "Observation", false, pain)
	delete(baseline, "id")
	delete(baseline, "partOf")
	baseline["subject"] = first["subject"]
	baseline["effectiveDateTime"] = start.Add(-time.Hour).Format(time.RFC3339)
	baseline["valueQuantity"].(map[string]any)["value"] = 10
	if r := ts.do(t, http.MethodPost, "/Observation", mustJSON(baseline)); r.status != http.StatusCreated {
		t.Fatalf("a baseline: %d %s", r.status, r.body)
	}
	// A score after a session, part of it: no longer a response.
	tied := find(32, "Observation", false, pain, `"partOf"`)
	tied["valueQuantity"].(map[string]any)["value"] = 10
	put(ts, tied, http.StatusOK)
	if r := ts.do(t, http.MethodDelete, "/MedicationRequest/"+find(4, "MedicationRequest", false, `"47625008"`)["id"].(string), ""); r.status != http.StatusOK && r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	stopped := find(5, "MedicationAdministration", false, `"completed"`)
	stopped["status"] = "stopped"
	stopped["statusReason"] = []any{map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "422587007", "display": "Nausea"}}}}
	put(ts, stopped, http.StatusOK)
	for i := 6; i < 40; i++ {
		if opioid := findOpioid(gen, i); opioid != nil {
			var m map[string]any
			json.Unmarshal(opioid, &m)
			dose := m["dosageInstruction"].([]any)[0].(map[string]any)["doseAndRate"].([]any)[0].(map[string]any)["doseQuantity"].(map[string]any)
			dose["value"] = dose["value"].(float64) * 2
			put(ts, m, http.StatusOK)
			break
		}
	}
	changed := find(7, "Observation", true, pain)
	changed["valueQuantity"].(map[string]any)["value"] = 0
	entry, _ := json.Marshal(changed)
	bundle := fmt.Sprintf(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":%s,"request":{"method":"PUT","url":"Observation/%s"}},
		{"resource":{"resourceType":"Observation","status":"bogus"},"request":{"method":"POST","url":"Observation"}}]}`, entry, changed["id"])
	if r := ts.do(t, http.MethodPost, "/", bundle); r.status != http.StatusBadRequest {
		t.Fatalf("a bad transaction: %d %s", r.status, r.body)
	}
	// Concurrent updates, committed together; the odd ones name a version
	// that is not the current one and fail.
	var wg sync.WaitGroup
	for i := 8; i < 20; i++ {
		obs := find(i, "Observation", true, pain)
		obs["valueQuantity"].(map[string]any)["value"] = 1
		ifMatch := `If-Match: W/"1"`
		status := http.StatusOK
		if i%2 == 1 {
			ifMatch, status = `If-Match: W/"7"`, http.StatusPreconditionFailed
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(obs)
			if r := ts.do(t, http.MethodPut, "/Observation/"+obs["id"].(string), string(body), ifMatch); r.status != status {
				t.Errorf("PUT %s with %s: %d %s, want %d", obs["id"], ifMatch, r.status, r.body, status)
			}
		}()
	}
	wg.Wait()
	kept := figures(ts)
	if reflect.DeepEqual(kept, before) {
		t.Fatal("the writes changed no figure")
	}
	ts.Close()
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}

	// Another session window makes every summary again, and so does the
	// default one after it.
	st, err := store.Open(context.Background(), dbPath, store.Options{Outcomes: outcomes.Options{SessionWindow: 3 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again := newTestServer(t, server.Config{DBPath: dbPath})
	for i, got := range figures(again) {
		for k := range mergeKeys(got, kept[i]) {
			if !reflect.DeepEqual(got[k], kept[i][k]) {
				t.Errorf("%s: %s = %v made again, %v kept", queries[i], k, got[k], kept[i][k])
			}
		}
	}
}

// newSideEffect returns a new side-effect Observation (code, a SNOMED CT
// one) made from a nausea report of patient i or a later one, during a
// session with no report of that code.
func newSideEffect(t *testing.T, gen *synth.Generator, i int, code, display string) map[string]any {
	t.Helper()
	for ; i < 40; i++ {
		reported := map[string]bool{} // session|code
		var nausea []map[string]any
		for _, r := range gen.Patient(i) {
			var m map[string]any
			if r.Type != "Observation" || json.Unmarshal(r.JSON, &m) != nil || m["partOf"] == nil {
				continue
			}
			session := m["partOf"].([]any)[0].(map[string]any)["reference"].(string)
			c := m["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"].(string)
			reported[session+"|"+c] = true
			if c == "422587007" {
				nausea = append(nausea, m)
			}
		}
		for _, m := range nausea {
			if !reported[m["partOf"].([]any)[0].(map[string]any)["reference"].(string)+"|"+code] {
				delete(m, "id")
				m["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": code, "display": display}}}
				return m
			}
		}
	}
	t.Fatal("no session with nausea and without " + display)
	return nil
}

// mergeKeys returns the keys of a and b.
func mergeKeys(a, b map[string]any) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

// findOpioid returns the JSON of patient i's first opioid order (not
// intravenous) with a dose quantity, nil when none.
func findOpioid(gen *synth.Generator, i int) []byte {
	for _, r := range gen.Patient(i) {
		if r.Type == "MedicationRequest" && !strings.Contains(string(r.JSON), `"47625008"`) && strings.Contains(string(r.JSON), `"doseQuantity"`) {
			return r.JSON
		}
	}
	return nil
}
