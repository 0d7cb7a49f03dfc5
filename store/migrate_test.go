package store_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"infusion/mapping"
	"infusion/store"
)

// TestImplicatedBackfill: migration 0008 fills the implicated column of
// findings written before it from their DetectedIssue bodies, versions
// dropped.
func TestImplicatedBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const issue = `{"resourceType":"DetectedIssue","status":"final","patient":{"reference":"Patient/p1"},
		"implicated":[{"reference":"MedicationAdministration/a1/_history/2"},{"reference":"MedicationRequest/o1"}]}`
	_, _, err = put(t, s, store.Put{Type: "DetectedIssue", ID: "d1", Create: true, Body: prepared(t, "d1", issue),
		Rows: mapping.Rows{Finding: &mapping.Finding{Owner: "MedicationAdministration/a1", Key: "k", Status: "final", Patient: "Patient/p1"}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The finding as a version before 0008 left it: no implicated list.
	db := openFile(t, path)
	migration, err := os.ReadFile(filepath.Join("migrations", "0008_courses.sql"))
	if err != nil {
		t.Fatal(err)
	}
	_, backfill, ok := strings.Cut(string(migration), "UPDATE findings")
	if !ok {
		t.Fatal("0008 has no backfill")
	}
	for _, q := range []string{`UPDATE findings SET implicated = NULL`, "UPDATE findings" + backfill} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	s, err = store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	found, err := s.Facts(context.Background()).ImplicatingFindings("Patient/p1", []string{"MedicationRequest/o1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || !slices.Equal(found[0].Implicated, []string{"MedicationAdministration/a1", "MedicationRequest/o1"}) {
		t.Errorf("implicated after the backfill: %+v", found)
	}
	none, err := s.Facts(context.Background()).ImplicatingFindings("Patient/p1", []string{"MedicationRequest/other"})
	if err != nil || len(none) != 0 {
		t.Errorf("a finding about other resources: %+v %v", none, err)
	}
}
