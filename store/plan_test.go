package store

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"infusion/fhir/model"
	"infusion/fhir/search"
	"infusion/mapping/outcomes"
)

// TestQueryPlans asks SQLite how it runs a search of each parameter type
// (and of chains, _has, sorting, paging and compartments) and fails when a
// plan scans a whole table instead of searching an index.
func TestQueryPlans(t *testing.T) {
	reg, s := planStore(t)
	tests := []struct {
		typ, query  string
		compartment bool
	}{
		{"Observation", "code=http://loinc.org|72514-3", false},
		{"Observation", "code:text=pain", false},
		{"Observation", "status:not=final&code=72514-3", false},
		{"Observation", "subject=Patient/p1&code=72514-3&date=ge2026-01-01", false},
		{"Observation", "patient:identifier=http://x|1", false},
		{"Observation", "date=2026-03", false},
		{"Observation", "value-quantity=gt5|http://unitsofmeasure.org|{score}", false},
		{"Observation", "value-string=abc", false},
		{"Observation", "value-string:contains=abc&code=x", false},
		{"Observation", "_profile=http://example.org/p", false},
		{"Observation", "code-value-quantity=72514-3$gt5", false},
		{"Observation", "part-of:MedicationAdministration.request.status=active", false},
		{"MedicationRequest", "identifier=http://x|1", false},
		{"MedicationRequest", "status=active&patient=Patient/p1", false},
		{"MedicationRequest", "_has:MedicationAdministration:request:status=completed", false},
		{"MedicationRequest", "_id=a,b", false},
		{"MedicationRequest", "_lastUpdated=ge2026-01-01", false},
		{"MedicationRequest", "status=active&_sort=-authoredon", false},
		{"MedicationRequest", "identifier:missing=true", false},
		{"MedicationAdministration", "request.medication=http://www.nlm.nih.gov/research/umls/rxnorm|6130", false},
		{"MedicationAdministration", "status=completed", true},
		{"Observation", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"?"+tt.query, func(t *testing.T) {
			params, _ := url.ParseQuery(tt.query)
			q, err := reg.Parse([]string{tt.typ}, params, search.Options{Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			req := SearchRequest{Query: q}
			if tt.compartment {
				req.Compartment = &Compartment{Params: reg.CompartmentParams(tt.typ), Type: "Patient", ID: "p1"}
			}
			driver, _, err := chooseDriver(context.Background(), s.read, req)
			if err != nil {
				t.Fatal(err)
			}
			// The page as started from the driver, and as a walk in order.
			for _, d := range []int{driver, noDriver} {
				explain(t, s, req, d)
			}
		})
	}
}

func explain(t *testing.T, s *Store, req SearchRequest, driver int) {
	t.Helper()
	q := req.Query
	var b builder
	query, err := b.pageQuery(req, driver, sortKeys(q.Sort), &cursor{RID: 10, Keys: make([]any, len(q.Sort))})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, s, query, b.args)
}

// TestIncludePlans checks the statements of _include and _revinclude.
func TestIncludePlans(t *testing.T) {
	reg, s := planStore(t)
	request, _ := reg.Lookup("MedicationAdministration", "request")
	from := []Version{{Type: "MedicationAdministration", ID: "a", rid: 1}, {Type: "MedicationRequest", ID: "o", rid: 2}}
	for _, reverse := range []bool{false, true} {
		var b builder
		inc := search.Include{Type: "MedicationAdministration", Params: []*search.Param{request}}
		query, ok := b.includeQuery(inc, from, reverse)
		if !ok {
			t.Fatal("no query")
		}
		checkPlan(t, s, query, b.args)
	}
}

// planStore returns the parameters of the three types and an empty store.
func planStore(t *testing.T) (*search.Registry, *Store) {
	t.Helper()
	m, err := model.Load()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := search.NewRegistry(m, "", "MedicationRequest", "MedicationAdministration", "Observation")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "plan.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return reg, s
}

// checkPlan fails the test when SQLite's plan for a statement scans a
// whole table, and returns the plan.
func checkPlan(t *testing.T, s *Store, query string, args []any) []string {
	t.Helper()
	rows, err := s.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	t.Logf("plan:\n%s", strings.Join(plan, "\n"))
	for _, line := range plan {
		if fullScan(line) {
			t.Errorf("full scan %q in the plan:\n%s", line, strings.Join(plan, "\n"))
		}
	}
	return plan
}

// fullScan reports a plan step that reads a whole stored table.
func fullScan(line string) bool {
	if !strings.HasPrefix(line, "SCAN ") {
		return false
	}
	name := strings.Fields(line)[1]
	switch name {
	case "q", "p", "CONSTANT", "json_each": // subquery results and a JSON argument, not tables
		return false
	case "outcome_stale": // what a write left to summarize: the short list a summary query starts from
		return false
	}
	return true
}

// TestFactPlans checks that every query of the protocol checks' facts
// reads through an index.
func TestFactPlans(t *testing.T) {
	_, s := planStore(t)
	for _, q := range factQueries {
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = "x"
		}
		if strings.Contains(q, "json_each") {
			args[1] = `["72514-3"]`
		}
		checkPlan(t, s, q, args)
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{"2026-03-10T09:00:00.000Z", "1999-12-31T23:59:59.999Z", "2026-02-30T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-03-10", "garbage"} {
		want, _ := time.Parse(timeLayout, s)
		if got := parseTime(s); !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestSummaryPlans checks that the queries the writer runs at the end of a
// write read only the stale courses and their patients' rows, through
// indexes (outcome_stale itself is the short list of what to read).
func TestSummaryPlans(t *testing.T) {
	_, s := planStore(t)
	var b builder
	checkPlan(t, s, deleteStaleSQL, nil)
	for _, q := range recordQueries(b.courseCondition(outcomes.Filter{})) {
		for _, line := range checkPlan(t, s, q, b.args) {
			if strings.HasPrefix(line, "SEARCH o ") && !strings.Contains(line, "(id=?)") {
				t.Errorf("orders read by %q, not by the stale courses' ids", line)
			}
		}
	}
}
