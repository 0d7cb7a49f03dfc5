package server_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"infusion/server"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// ketamineCourse are the official-style examples of a ketamine course for
// Patient/pat-crps-1, with the ids their references use: the order, a
// completed session and one stopped for nausea, the weight, pain before
// and after, vital signs and side effects.
var ketamineCourse = []protocolItem{
	{Type: "Observation", ID: "weight-crps-1", File: "observation-body-weight.json"},
	{Type: "Observation", ID: "pain-before-1", File: "observation-pain-before.json"},
	{Type: "Observation", ID: "pain-after-1", File: "observation-pain-after.json"},
	{Type: "Observation", ID: "bp-1", File: "observation-bp-during.json"},
	{Type: "Observation", ID: "hr-1", File: "observation-heart-rate.json"},
	{Type: "Observation", ID: "spo2-1", File: "observation-spo2.json"},
	{Type: "Observation", ID: "headache-1", File: "observation-headache.json"},
	{Type: "Observation", ID: "nausea-1", File: "observation-nausea.json"},
	{Type: "MedicationRequest", ID: "ketamine-order-1", File: "medicationrequest-ketamine-crps.json"},
	{Type: "MedicationAdministration", ID: "ketamine-admin-1", File: "medicationadministration-ketamine-completed.json"},
	{Type: "MedicationAdministration", ID: "ketamine-admin-2", File: "medicationadministration-ketamine-stopped-nausea.json"},
}

// flatten renders a Parameters resource as one line per value, named by
// its path of parts, e.g. "session.painBefore = 7 {score}". DetectedIssue
// ids, which are generated, read DetectedIssue/*.
func flatten(t *testing.T, params map[string]any) string {
	t.Helper()
	var b strings.Builder
	var walk func(prefix string, list []any)
	walk = func(prefix string, list []any) {
		for _, p := range list {
			p := p.(map[string]any)
			name := prefix + p["name"].(string)
			if parts, ok := p["part"]; ok {
				fmt.Fprintf(&b, "%s\n", name)
				walk(name+".", parts.([]any))
				continue
			}
			for k, v := range p {
				if !strings.HasPrefix(k, "value") {
					continue
				}
				fmt.Fprintf(&b, "%s = %s\n", name, valueText(v))
			}
		}
	}
	walk("", asList(params["parameter"]))
	return regexp.MustCompile(`DetectedIssue/[0-9a-f-]+`).ReplaceAllString(b.String(), "DetectedIssue/*")
}

// valueText renders a value[x] briefly: a Quantity as value and unit, a
// Reference as its reference, a Coding as system|code, a Period as
// start/end.
func valueText(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Sprint(v)
	}
	switch {
	case m["value"] != nil:
		return strings.TrimSpace(fmt.Sprintf("%v %v", m["value"], orEmpty(m["unit"])))
	case m["reference"] != nil:
		return fmt.Sprint(m["reference"])
	case m["code"] != nil:
		return fmt.Sprintf("%v|%v", orEmpty(m["system"]), m["code"])
	case m["start"] != nil || m["end"] != nil:
		return fmt.Sprintf("%v/%v", orEmpty(m["start"]), orEmpty(m["end"]))
	}
	data, _ := json.Marshal(m)
	return string(data)
}

func orEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}

// golden compares text with the golden file testdata/golden/{dir}/{name},
// rewriting it under -update.
func golden(t *testing.T, dir, name, got string) {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", dir, name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./server -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for l, n := range count {
		for ; n > 0; n-- {
			b.WriteString("- " + l + "\n")
		}
		for ; n < 0; n++ {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// operation GETs an operation and returns its Parameters, checked against
// the operation's OperationDefinition.
func (ts *testServer) operation(t *testing.T, name, path string) map[string]any {
	t.Helper()
	r := ts.do(t, http.MethodGet, path, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	def := ts.do(t, http.MethodGet, "/OperationDefinition/"+name, "")
	if def.status != http.StatusOK {
		t.Fatalf("OperationDefinition/%s: %d %s", name, def.status, def.body)
	}
	out := r.json(t)
	checkParameters(t, name, def.json(t), out)
	return out
}

// checkParameters fails the test when a Parameters resource does not
// conform to an OperationDefinition's out parameters: each name declared
// (parts by their parents), each count within min and max, each value of
// the declared type.
func checkParameters(t *testing.T, op string, def, params map[string]any) {
	t.Helper()
	var declared []any
	for _, p := range asList(def["parameter"]) {
		if p.(map[string]any)["use"] == "out" {
			declared = append(declared, p)
		}
	}
	var check func(path string, decl, got []any)
	check = func(path string, decl, got []any) {
		counts := map[string]int{}
		byName := map[string]map[string]any{}
		for _, d := range decl {
			d := d.(map[string]any)
			byName[d["name"].(string)] = d
		}
		for _, g := range got {
			g := g.(map[string]any)
			name := g["name"].(string)
			d, ok := byName[name]
			if !ok {
				t.Errorf("$%s: %s%s is not declared in the OperationDefinition", op, path, name)
				continue
			}
			counts[name]++
			if typ, ok := d["type"].(string); ok && g["value"+strings.ToUpper(typ[:1])+typ[1:]] == nil {
				t.Errorf("$%s: %s%s is not a %s: %v", op, path, name, typ, g)
			}
			if parts, ok := d["part"].([]any); ok {
				check(path+name+".", parts, asList(g["part"]))
			}
		}
		for name, d := range byName {
			n, low := counts[name], int(d["min"].(float64))
			if n < low || d["max"] == "1" && n > 1 {
				t.Errorf("$%s: %s%s appears %d times; the definition says %v..%v", op, path, name, n, d["min"], d["max"])
			}
		}
	}
	check("", declared, asList(params["parameter"]))
}

// TestCourseOperations writes a ketamine course and reads it back through
// $course, $monitoring and $infusion-summary, compared with golden files,
// then changes it (an update, deletes) and sees each answer follow.
func TestCourseOperations(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	for _, it := range ketamineCourse {
		ts.put(t, it)
	}
	golden(t, "operations", "course-ketamine.txt", flatten(t, ts.operation(t, "course", "/MedicationRequest/ketamine-order-1/$course")))
	golden(t, "operations", "monitoring-ketamine-1.txt", flatten(t, ts.operation(t, "monitoring", "/MedicationAdministration/ketamine-admin-1/$monitoring")))
	summary := flatten(t, ts.operation(t, "infusion-summary", "/Patient/pat-crps-1/$infusion-summary"))
	golden(t, "operations", "summary-pat-crps-1.txt", summary)

	course := func() string {
		return flatten(t, ts.operation(t, "course", "/MedicationRequest/ketamine-order-1/$course"))
	}
	has := func(step, text string, want ...string) {
		t.Helper()
		for _, w := range want {
			neg := strings.HasPrefix(w, "!")
			if strings.Contains(text, strings.TrimPrefix(w, "!")) == neg {
				t.Errorf("%s: want %q in:\n%s", step, w, text)
			}
		}
	}
	// The stopped session, completed after all with a larger dose.
	stopped := ketamineCourse[10]
	stopped.Patch = json.RawMessage(`[{"op":"replace","path":"/status","value":"completed"},{"op":"remove","path":"/statusReason"},
		{"op":"replace","path":"/dosage/dose/value","value":100}]`)
	ts.put(t, stopped)
	has("update", course(), "sessionsStopped = 0", "sessionsGiven = 2", "cumulativeDose = 245 mg", "!statusReason")
	// Pain scores around the second session: a second pair (8 → 5, and
	// 7 → 3 in the first: a mean change of -3.5).
	ts.put(t, protocolItem{Type: "Observation", ID: "pain-after-2", File: "observation-pain-after.json",
		Patch: json.RawMessage(`[{"op":"replace","path":"/effectiveDateTime","value":"2024-03-12T11:00:00+01:00"},
		{"op":"replace","path":"/partOf/0/reference","value":"MedicationAdministration/ketamine-admin-2"},
		{"op":"replace","path":"/valueQuantity/value","value":5}]`)})
	has("after only", course(), "painPairs = 1")
	ts.put(t, protocolItem{Type: "Observation", ID: "pain-before-2", File: "observation-pain-before.json",
		Patch: json.RawMessage(`[{"op":"replace","path":"/effectiveDateTime","value":"2024-03-12T07:30:00+01:00"},
		{"op":"remove","path":"/partOf"},{"op":"replace","path":"/valueQuantity/value","value":8}]`)})
	has("second pair", course(), "painPairs = 2", "session.painAfterObservation = Observation/pain-after-2",
		"session.painBeforeObservation = Observation/pain-before-2", "meanPainChange = -3.5 {score}",
		"session.painChangePercent = -37.5 %")
	// Deletes: the pain score after the first session, then the second
	// session.
	for _, path := range []string{"/Observation/pain-after-1", "/MedicationAdministration/ketamine-admin-2"} {
		if r := ts.do(t, http.MethodDelete, path, ""); r.status != http.StatusOK && r.status != http.StatusNoContent {
			t.Fatalf("DELETE %s: %d %s", path, r.status, r.body)
		}
	}
	got := course()
	has("deletes", got, "sessionsGiven = 1", "cumulativeDose = 145 mg", "painPairs = 0", "!ketamine-admin-2", "!meanPainChange")
	if strings.Count(got, "\nsession\n") != 1 {
		t.Errorf("after deleting a session:\n%s", got)
	}
	// The order deleted: its course is gone, and so is it from the summary.
	ts.do(t, http.MethodDelete, "/MedicationRequest/ketamine-order-1", "")
	if r := ts.do(t, http.MethodGet, "/MedicationRequest/ketamine-order-1/$course", ""); r.status != http.StatusGone {
		t.Errorf("$course of a deleted order: %d %s", r.status, r.body)
	}
	has("summary", flatten(t, ts.operation(t, "infusion-summary", "/Patient/pat-crps-1/$infusion-summary")), "courses = 0", "!course\n")
}

// TestCourseOperationErrors: unknown, deleted and malformed ids, other
// methods, unknown definitions.
func TestCourseOperationErrors(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	ts.put(t, ketamineCourse[8])
	ts.put(t, ketamineCourse[9])
	ts.do(t, http.MethodDelete, "/MedicationAdministration/ketamine-admin-1", "")
	for _, tt := range []struct {
		method, path string
		status       int
		text         string
	}{
		{"GET", "/MedicationRequest/nope/$course", 404, "nope"},
		{"GET", "/MedicationRequest/bad!id/$course", 400, "not a valid id"},
		{"GET", "/MedicationAdministration/nope/$monitoring", 404, "nope"},
		{"GET", "/MedicationAdministration/ketamine-admin-1/$monitoring", 410, "deleted"},
		{"GET", "/Patient/bad!id/$infusion-summary", 400, "not a valid id"},
		{"POST", "/MedicationRequest/ketamine-order-1/$course", 405, ""},
		{"GET", "/OperationDefinition/nope", 404, "not an operation of this server"},
		{"GET", "/OperationDefinition/..%2Fcourse", 404, ""},
		{"GET", "/MedicationRequest/ketamine-order-1/$monitoring", 404, ""},
	} {
		r := ts.do(t, tt.method, tt.path, "")
		if r.status != tt.status || !strings.Contains(string(r.body), tt.text) {
			t.Errorf("%s %s: %d %s, want %d %q", tt.method, tt.path, r.status, r.body, tt.status, tt.text)
			continue
		}
		if r.json(t)["resourceType"] != "OperationOutcome" {
			t.Errorf("%s %s: not an OperationOutcome: %s", tt.method, tt.path, r.body)
		}
	}
	// A patient with no courses: an empty summary.
	out := flatten(t, ts.operation(t, "infusion-summary", "/Patient/someone-else/$infusion-summary"))
	if out != "patient = Patient/someone-else\ncourses = 0\nsessionsGiven = 0\n" {
		t.Errorf("empty summary:\n%s", out)
	}
	// The reads around the operation routes still answer.
	for _, path := range []string{"/MedicationRequest/ketamine-order-1", "/MedicationRequest/ketamine-order-1/_history",
		"/Patient/pat-crps-1/MedicationRequest"} {
		if r := ts.do(t, http.MethodGet, path, ""); r.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}
}

// TestCourseEdges changes the ketamine course one way at a time and reads
// the session it changes: how a dose is worked out or why it is not, the
// weight, pending and missing windows, a reading on a window's edge, a
// stop threshold crossed, sessions not given and drugs no protocol covers.
func TestCourseEdges(t *testing.T) {
	const (
		course     = "/MedicationRequest/ketamine-order-1/$course"
		monitoring = "/MedicationAdministration/ketamine-admin-1/$monitoring"
	)
	tests := []struct {
		name    string
		patches map[string]string // id → JSON Patch of its example, or "omit"
		extra   []protocolItem
		path    string
		want    []string // lines the answer holds; "!" lines it must not
	}{
		{name: "as recorded", path: course, want: []string{"session.dose = 145 mg", "session.dosePerKg = 2 mg/kg", "!session.doseCalculation"}},
		{name: "rate times duration", path: course,
			patches: map[string]string{"ketamine-admin-1": `[{"op":"remove","path":"/dosage/dose"}]`},
			want: []string{"session.dose = 145 mg", "session.dosePerKg = 2 mg/kg",
				"session.doseCalculation = 0.5 mg/kg/h for 240 min (36.25 mg/h with the body weight 72.5 kg (Observation/weight-crps-1))"}},
		{name: "mL at the order's concentration", path: course,
			patches: map[string]string{"ketamine-admin-1": `[{"op":"replace","path":"/dosage/dose","value":{"value":14.5,"unit":"mL","system":"http://unitsofmeasure.org","code":"mL"}}]`,
				"ketamine-order-1": `[{"op":"add","path":"/contained","value":[{"resourceType":"Medication","id":"ket","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"6130","display":"ketamine"}]},"ingredient":[{"itemCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"6130"}]},"strength":{"numerator":{"value":100,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"},"denominator":{"value":10,"unit":"mL","system":"http://unitsofmeasure.org","code":"mL"}}}]}]},
					{"op":"remove","path":"/medicationCodeableConcept"},{"op":"add","path":"/medicationReference","value":{"reference":"#ket"}}]`},
			want: []string{"session.dose = 145 mg", "session.doseCalculation = at the concentration 100 mg/10 mL"}},
		{name: "no weight", path: course, patches: map[string]string{"weight-crps-1": "omit"},
			want: []string{"session.dose = 145 mg", "!session.dosePerKg", "cumulativeDosePerKgSessions = 0", "!cumulativeDosePerKg ="}},
		{name: "rate per kg without a weight", path: course,
			patches: map[string]string{"weight-crps-1": "omit", "ketamine-admin-1": `[{"op":"remove","path":"/dosage/dose"}]`},
			want: []string{"session.doseNote = the rate 0.5 mg/kg/h cannot be expressed in mg/h: no body weight (LOINC 29463-7) before the session",
				"cumulativeDoseSessions = 1", "cumulativeDose = 54.4 mg"}},
		{name: "a unit that does not convert", path: course,
			patches: map[string]string{"ketamine-admin-1": `[{"op":"replace","path":"/dosage/dose","value":{"value":3,"unit":"tablets"}}]`},
			want:    []string{"session.doseNote = the dose 3 tablets cannot be expressed in mg:"}},
		{name: "a rate and no end", path: course,
			patches: map[string]string{"ketamine-admin-1": `[{"op":"remove","path":"/dosage/dose"},{"op":"remove","path":"/effectivePeriod"},{"op":"add","path":"/effectiveDateTime","value":"2024-03-11T09:00:00+01:00"}]`},
			want: []string{"session.doseNote = the administration gives a rate but no end, so the amount given is unknown",
				"session.period = 2024-03-11T08:00:00.000Z/\n"}},
		{name: "neither dose nor rate", path: course,
			patches: map[string]string{"ketamine-admin-1": `[{"op":"remove","path":"/dosage"}]`},
			want:    []string{"session.doseNote = the administration gives neither a dose nor a rate", "cumulativeDoseSessions = 1"}},
		{name: "running, windows still open", path: monitoring,
			patches: map[string]string{"ketamine-admin-1": `[{"op":"replace","path":"/status","value":"in-progress"},{"op":"replace","path":"/effectivePeriod","value":{"start":"2099-01-01T09:00:00Z"}}]`},
			want:    []string{"required = 6", "pending = 6", "!observation.status = met", "!compliance"}},
		{name: "running for 20 minutes", path: monitoring,
			patches: map[string]string{"ketamine-admin-1": fmt.Sprintf(`[{"op":"replace","path":"/status","value":"in-progress"},{"op":"replace","path":"/effectivePeriod","value":{"start":%q}}]`,
				time.Now().Add(-20*time.Minute).UTC().Format(time.RFC3339))},
			// Before: 2 missing; during (3 rules): the first interval missing, the one under way pending; after: pending.
			want: []string{"required = 9", "met = 0", "missing = 5", "pending = 4", "compliance = 0 %"}},
		{name: "another session's reading", path: monitoring,
			extra: []protocolItem{{Type: "Observation", ID: "hr-other", File: "observation-heart-rate.json",
				Patch: json.RawMessage(`[{"op":"replace","path":"/effectiveDateTime","value":"2024-03-11T09:20:00+01:00"},{"op":"replace","path":"/partOf/0/reference","value":"MedicationAdministration/ketamine-admin-2"}]`)}},
			want: []string{"met = 5", "!Observation/hr-other"}},
		{name: "a reading on a window's edge counts once", path: monitoring,
			extra: []protocolItem{{Type: "Observation", ID: "hr-edge", File: "observation-heart-rate.json",
				Patch: json.RawMessage(`[{"op":"replace","path":"/effectiveDateTime","value":"2024-03-11T09:15:00+01:00"},{"op":"remove","path":"/partOf"}]`)}},
			want: []string{"met = 6", "observation.observation = Observation/hr-edge", "observation.window = 2024-03-11T08:15:00.000Z/2024-03-11T08:29:59.999Z"}},
		{name: "stop threshold crossed", path: monitoring,
			patches: map[string]string{"bp-1": `[{"op":"replace","path":"/component/0/valueQuantity/value","value":185}]`},
			want: []string{"thresholdCrossed", "thresholdCrossed.name = Systolic blood pressure", "thresholdCrossed.observation = Observation/bp-1",
				"thresholdCrossed.value = 185 mm[Hg]", "thresholdCrossed.threshold = above 180 mm[Hg]", "thresholdCrossed.severity = error"}},
		{name: "stop threshold crossed, in the course", path: course,
			patches: map[string]string{"bp-1": `[{"op":"replace","path":"/component/0/valueQuantity/value","value":185}]`},
			want:    []string{"session.monitoring.thresholdCrossed.threshold = above 180 mm[Hg]"}},
		{name: "not done", path: course,
			patches: map[string]string{"ketamine-admin-2": `[{"op":"replace","path":"/status","value":"not-done"}]`},
			want: []string{"sessionsNotDone = 1", "sessionsGiven = 1", "session.monitoring.reason = the administration was not given (status not-done)",
				"!session.number = 2", "!session.label = session 2 of 5"}},
		{name: "no protocol covers the drug", path: monitoring,
			patches: map[string]string{"ketamine-admin-1": `[{"op":"replace","path":"/medicationCodeableConcept","value":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"7804","display":"oxycodone"}]}}]`},
			want:    []string{"reason = no protocol of formulary 2026.11.1 covers oxycodone", "!required"}},
		{name: "side effect denied", path: course,
			patches: map[string]string{"headache-1": `[{"op":"remove","path":"/valueCodeableConcept"},{"op":"add","path":"/valueBoolean","value":false}]`},
			want:    []string{"!Observation/headache-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, server.Config{})
			for _, it := range append(slices.Clone(ketamineCourse), tt.extra...) {
				switch p := tt.patches[it.ID]; p {
				case "omit":
					continue
				case "":
				default:
					it.Patch = json.RawMessage(p)
				}
				ts.put(t, it)
			}
			name := tt.path[strings.LastIndex(tt.path, "$")+1:]
			got := flatten(t, ts.operation(t, name, tt.path))
			for _, w := range tt.want {
				line, neg := strings.CutPrefix(w, "!")
				if strings.Contains(got, line) == neg {
					t.Errorf("want %q in:\n%s", w, got)
				}
			}
		})
	}
}
