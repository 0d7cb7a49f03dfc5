package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"infusion/fhir"
	"infusion/mapping"
	"infusion/store"
)

func openStore(tb testing.TB) *store.Store {
	tb.Helper()
	s := openStoreAt(tb, filepath.Join(tb.TempDir(), "test.db"), store.Options{})
	tb.Cleanup(func() { s.Close() })
	return s
}

// openStoreAt opens the store at path; the caller closes it.
func openStoreAt(tb testing.TB, path string, opts store.Options) *store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// openFile opens the database file at path (made by the store) with
// database/sql alone, for what a test changes or reads behind the store.
func openFile(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func prepared(tb testing.TB, id, body string) *fhir.Prepared {
	tb.Helper()
	r, err := fhir.Parse([]byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := r.Prepare(id)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

const observation = `{"resourceType":"Observation","status":"final","code":{"text":"pain"},
	"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":7.50,"unit":"{score}"}}`

func put(tb testing.TB, s *store.Store, p store.Put) (store.Version, bool, error) {
	tb.Helper()
	var v store.Version
	var created bool
	err := s.Update(context.Background(), func(tx store.Writer) error {
		var err error
		v, created, err = tx.Put(p)
		return err
	})
	return v, created, err
}

func TestPutReadHistory(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	v1, created, err := put(t, s, store.Put{Type: "Observation", ID: "o1", Create: true, Body: prepared(t, "o1", observation)})
	if err != nil || !created || v1.VersionID != 1 {
		t.Fatalf("create: %+v %v %v", v1, created, err)
	}
	if got := string(v1.Body); got != `{"resourceType":"Observation","id":"o1","meta":{"versionId":"1","lastUpdated":"`+
		v1.LastUpdated.Format("2006-01-02T15:04:05.000Z")+`"},"status":"final","code":{"text":"pain"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":7.50,"unit":"{score}"}}` {
		t.Errorf("stored body = %s", got)
	}
	v2, created, err := put(t, s, store.Put{Type: "Observation", ID: "o1", IfMatch: 1, Body: prepared(t, "o1", observation)})
	if err != nil || created || v2.VersionID != 2 {
		t.Fatalf("update: %+v %v %v", v2, created, err)
	}
	if _, _, err := put(t, s, store.Put{Type: "Observation", ID: "o1", IfMatch: 1, Body: prepared(t, "o1", observation)}); store.Code(err) != store.EPrecondition {
		t.Errorf("stale If-Match: err = %v", err)
	}
	cur, err := s.Read(ctx, "Observation", "o1")
	if err != nil || cur.VersionID != 2 || cur.ETag() != `W/"2"` {
		t.Errorf("read: %+v %v", cur, err)
	}
	var res store.DeleteResult
	if err := s.Update(ctx, func(tx store.Writer) error {
		_, res, err = tx.Delete("Observation", "o1", 0)
		return err
	}); err != nil || res != store.Deleted {
		t.Fatalf("delete: %v %v", res, err)
	}
	if cur, err := s.Read(ctx, "Observation", "o1"); err != nil || !cur.Deleted || cur.VersionID != 3 {
		t.Errorf("read after delete: %+v %v", cur, err)
	}
	if old, err := s.VRead(ctx, "Observation", "o1", 1); err != nil || old.Deleted || string(old.Body) != string(v1.Body) {
		t.Errorf("vread 1: %+v %v", old, err)
	}
	if _, err := s.VRead(ctx, "Observation", "o1", 9); store.Code(err) != store.ENotFound {
		t.Errorf("vread 9: %v", err)
	}
	h, err := s.History(ctx, store.HistoryQuery{Type: "Observation", ID: "o1", Count: 10})
	if err != nil || len(h) != 3 || h[0].Method != "DELETE" || h[1].Method != "PUT" || h[2].Method != "POST" {
		t.Fatalf("history: %+v %v", h, err)
	}
	page, err := s.History(ctx, store.HistoryQuery{Count: 1, Before: h[0].Seq})
	if err != nil || len(page) != 1 || page[0].VersionID != 2 {
		t.Errorf("paged history: %+v %v", page, err)
	}
	since, err := s.History(ctx, store.HistoryQuery{Count: 10, Since: time.Now().Add(time.Hour)})
	if err != nil || len(since) != 0 {
		t.Errorf("history since the future: %+v %v", since, err)
	}
}

// TestFailedWriteLeavesNoTrace checks that a write whose function fails
// after writing rolls back alone, while a concurrent write commits.
func TestFailedWriteLeavesNoTrace(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("o%d", i)
			errs[i] = s.Update(ctx, func(tx store.Writer) error {
				if _, _, err := tx.Put(store.Put{Type: "Observation", ID: id, Create: true, Body: prepared(t, id, observation),
					Rows: mapping.Rows{Assessments: []mapping.Assessment{{Kind: mapping.KindPain}}}}); err != nil {
					return err
				}
				if i%2 == 1 {
					return errors.New("refused after writing")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		_, rerr := s.Read(ctx, "Observation", fmt.Sprintf("o%d", i))
		if i%2 == 1 {
			if err == nil || store.Code(rerr) != store.ENotFound {
				t.Errorf("write %d: err %v, read %v; want it refused and absent", i, err, rerr)
			}
			continue
		}
		if err != nil || rerr != nil {
			t.Errorf("write %d: err %v, read %v", i, err, rerr)
		}
	}
}

// TestConcurrentIfMatch proves that of many updates with the same If-Match
// exactly one succeeds: the check is inside the write transaction.
func TestConcurrentIfMatch(t *testing.T) {
	s := openStore(t)
	if _, _, err := put(t, s, store.Put{Type: "Observation", ID: "o1", Create: true, Body: prepared(t, "o1", observation)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, failed := 0, 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := put(t, s, store.Put{Type: "Observation", ID: "o1", IfMatch: 1, Body: prepared(t, "o1", observation)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case store.Code(err) == store.EPrecondition:
				failed++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || failed != 15 {
		t.Errorf("%d succeeded and %d failed; want 1 and 15", ok, failed)
	}
}
