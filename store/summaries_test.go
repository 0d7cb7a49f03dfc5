package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"infusion/mapping"
	"infusion/mapping/outcomes"
	"infusion/store"
)

// course returns the resources of one ketamine course of patient: the
// order, one session on 2026-03-02 and pain scores of 8 the day before and
// of 4 ten days after.
func course(t *testing.T, patient string) []store.Put {
	t.Helper()
	subject := fmt.Sprintf(`"subject":{"reference":"Patient/%s"}`, patient)
	pain := func(id, at string, value int) string {
		return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final",%s,"effectiveDateTime":%q,
			"code":{"coding":[{"system":"http://loinc.org","code":"72514-3"}]},"valueQuantity":{"value":%d,"unit":"{score}"}}`,
			id, subject, at, value)
	}
	resources := []struct{ typ, id, body string }{
		{"MedicationRequest", patient + "-order", fmt.Sprintf(`{"resourceType":"MedicationRequest","status":"active","intent":"order",%s,
			"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"6130"}]}}`, subject)},
		{"MedicationAdministration", patient + "-session", fmt.Sprintf(`{"resourceType":"MedicationAdministration","status":"completed",%s,
			"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"6130"}]},
			"request":{"reference":"MedicationRequest/%s-order"},
			"effectivePeriod":{"start":"2026-03-02T09:00:00Z","end":"2026-03-02T13:00:00Z"}}`, subject, patient)},
		{"Observation", patient + "-baseline", pain(patient+"-baseline", "2026-03-01T09:00:00Z", 8)},
		{"Observation", patient + "-outcome", pain(patient+"-outcome", "2026-03-12T09:00:00Z", 4)},
	}
	mapper := mapping.NewMapper(mapping.DefaultClassifier())
	var puts []store.Put
	for _, r := range resources {
		rows, err := mapper.Map(r.typ, r.id, []byte(r.body))
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, store.Put{Type: r.typ, ID: r.id, Create: true, Body: prepared(t, r.id, r.body), Rows: rows})
	}
	return puts
}

// summaries returns the course summaries of every patient, by patient.
func summaries(t *testing.T, s *store.Store) map[string][]outcomes.Summary {
	t.Helper()
	var mu sync.Mutex
	got := map[string][]outcomes.Summary{}
	err := s.Outcomes(context.Background(), outcomes.Filter{}, 30*24*time.Hour, 1, func(_ int, patient string, c []outcomes.Summary) error {
		mu.Lock()
		defer mu.Unlock()
		got[patient] = c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func putAll(s *store.Store, puts []store.Put) error {
	return s.Update(context.Background(), func(w store.Writer) error {
		for _, p := range puts {
			if _, _, err := w.Put(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestSummaryFailureUndoesOneWrite: when the summaries of one write cannot
// be made (here a trigger refuses one patient's), that write alone is
// undone; another committed in the same transaction keeps its data and its
// summary.
func TestSummaryFailureUndoesOneWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	s := openStoreAt(t, path, store.Options{})
	s.Close()
	_, err := openFile(t, path).Exec(`CREATE TRIGGER refuse_bad BEFORE INSERT ON course_outcomes WHEN NEW.patient = 'Patient/bad'
		BEGIN SELECT RAISE(ABORT, 'refused'); END`)
	if err != nil {
		t.Fatal(err)
	}
	s = openStoreAt(t, path, store.Options{})
	defer s.Close()

	// A write that holds the writer until both others are queued, so that
	// they are committed in one transaction.
	hold, held := make(chan struct{}), make(chan struct{})
	go s.Update(context.Background(), func(store.Writer) error {
		close(held)
		<-hold
		return nil
	})
	<-held
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	for _, p := range []string{"good", "bad"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := putAll(s, course(t, p))
			mu.Lock()
			errs[p] = err
			mu.Unlock()
		}()
	}
	time.Sleep(50 * time.Millisecond) // both queued (the test holds either way)
	close(hold)
	wg.Wait()
	if errs["good"] != nil || errs["bad"] == nil || !strings.Contains(errs["bad"].Error(), "refused") {
		t.Fatalf("good: %v, bad: %v; want only bad refused", errs["good"], errs["bad"])
	}
	if _, err := s.Read(context.Background(), "MedicationRequest", "bad-order"); store.Code(err) != store.ENotFound {
		t.Errorf("the refused write's order: %v, want not found", err)
	}
	got := summaries(t, s)
	if len(got) != 1 || len(got["Patient/good"]) != 1 || *got["Patient/good"][0].Baseline != 8 {
		t.Errorf("summaries %+v, want Patient/good's alone with baseline 8", got)
	}
}

// TestOutcomeTriggers: every model table the summaries read has triggers
// that mark courses stale on insert, update and delete (a migration that
// rebuilds a table must make them again), and a row changed outside the
// store's writes is summarized again when the store next opens.
func TestOutcomeTriggers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	s := openStoreAt(t, path, store.Options{})
	const issue = `{"resourceType":"DetectedIssue","status":"final","patient":{"reference":"Patient/p1"}}`
	finding := store.Put{Type: "DetectedIssue", ID: "d1", Create: true, Body: prepared(t, "d1", issue),
		Rows: mapping.Rows{Finding: &mapping.Finding{Owner: "MedicationAdministration/p1-session", Key: "k", Status: "final", Code: "DOSEH", Patient: "Patient/p1"}}}
	if err := putAll(s, append(course(t, "p1"), finding)); err != nil {
		t.Fatal(err)
	}
	if got := summaries(t, s)["Patient/p1"]; len(got) != 1 || *got[0].Baseline != 8 || *got[0].Outcome != 4 || len(got[0].Findings) != 1 {
		t.Fatalf("summaries %+v, want baseline 8, outcome 4 and a finding", got)
	}
	s.Close()

	db := openFile(t, path)
	rows, err := db.Query(`SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'`)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for rows.Next() {
		var table, body string
		if err := rows.Scan(&table, &body); err != nil {
			t.Fatal(err)
		}
		for _, event := range []string{"INSERT", "UPDATE", "DELETE"} {
			if strings.Contains(body, "AFTER "+event+" ON "+table) && strings.Contains(body, "outcome_stale") {
				found[table+" "+event] = true
			}
		}
	}
	rows.Close()
	for _, table := range []string{"infusion_orders", "infusion_administrations", "assessments", "findings"} {
		for _, event := range []string{"INSERT", "UPDATE", "DELETE"} {
			if !found[table+" "+event] {
				t.Errorf("no trigger marks courses stale after %s on %s", event, table)
			}
		}
	}

	for _, change := range []string{`UPDATE assessments SET value = 6 WHERE observation_id = 'p1-baseline'`,
		`UPDATE findings SET status = 'cancelled' WHERE id = 'd1'`} {
		if _, err := db.Exec(change); err != nil {
			t.Fatal(err)
		}
	}
	s = openStoreAt(t, path, store.Options{})
	defer s.Close()
	if got := summaries(t, s)["Patient/p1"]; len(got) != 1 || *got[0].Baseline != 6 || len(got[0].Findings) != 0 {
		t.Errorf("summaries %+v after the baseline changed and the finding closed, want baseline 6 and no finding", got)
	}
}

// TestSummarizeAll: summaries made with other options are all made again
// at opening, a thousand patients at a time, also when a change made
// outside the store left a patient beyond the first thousand stale.
func TestSummarizeAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	s := openStoreAt(t, path, store.Options{})
	var orders []store.Put
	for i := range 1500 {
		orders = append(orders, course(t, fmt.Sprintf("p%04d", i))[0])
	}
	if err := putAll(s, orders); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := openFile(t, path).Exec(`UPDATE infusion_orders SET setting = 'home' WHERE id = 'p1400-order'`)
	if err != nil {
		t.Fatal(err)
	}
	s = openStoreAt(t, path, store.Options{Outcomes: outcomes.Options{SessionWindow: 3 * time.Hour}})
	defer s.Close()
	got := summaries(t, s)
	if len(got) != 1500 || got["Patient/p1400"][0].Setting != mapping.SettingHome {
		t.Errorf("%d patients summarized, Patient/p1400's course %+v; want 1,500 and a home course", len(got), got["Patient/p1400"])
	}
}
