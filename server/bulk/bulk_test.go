package bulk_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"infusion/fhir"
	"infusion/fhir/model"
	"infusion/fhir/search"
	"infusion/server/bulk"
	"infusion/store"
)

var types = []string{"Observation"}

// fixture is a store holding n observations, and a registry.
func fixture(t *testing.T, n int) (*store.Store, *search.Registry, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := model.Load()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := search.NewRegistry(m, "", types...)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(w store.Writer) error {
		for i := range n {
			res, err := fhir.Parse(fmt.Appendf(nil, `{"resourceType":"Observation","status":"final","code":{"text":"pain"},`+
				`"subject":{"reference":"Patient/p%d"},"valueQuantity":{"value":%d}}`, i%3, i%10))
			if err != nil {
				return err
			}
			body, _ := res.Prepare(fmt.Sprint("obs-", i))
			if _, _, err := w.Put(store.Put{Type: "Observation", ID: fmt.Sprint("obs-", i), Create: true, Body: body,
				Index: reg.Extract("Observation", res.Tree)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, reg, filepath.Join(dir, "exports")
}

// stalling is a store whose snapshots wait until their context ends: a job
// on it stays in progress until the Manager closes.
type stalling struct {
	*store.Store
	entered chan struct{}
}

func (s stalling) Snapshot(ctx context.Context) (*store.Snapshot, error) {
	s.entered <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// await polls a job until it is no longer accepted or in progress.
func await(t *testing.T, m *bulk.Manager, id string) bulk.Status {
	t.Helper()
	for range 1000 {
		st, err := m.Status(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != store.ExportAccepted && st.Status != store.ExportInProgress {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("job %s does not finish", id)
	return bulk.Status{}
}

// TestResumeAfterStop: a job under way when its Manager closes is started
// again by the next Manager on the same store, and completes; after too
// many interruptions it is marked failed instead.
func TestResumeAfterStop(t *testing.T) {
	st, reg, dir := fixture(t, 25)
	ctx := context.Background()
	req := bulk.Request{URL: "http://x/$export", Types: types}
	var id string
	for attempt := 1; attempt <= 3; attempt++ {
		stall := stalling{Store: st, entered: make(chan struct{}, 1)}
		m, err := bulk.New(ctx, stall, reg, bulk.Options{Dir: dir, Types: types})
		if err != nil {
			t.Fatal(err)
		}
		if id == "" {
			if id, err = m.Start(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		<-stall.entered // the job runs, and stalls in its snapshot
		s, err := m.Status(ctx, id)
		if err != nil || s.Status != store.ExportInProgress || s.Attempts != attempt {
			t.Fatalf("attempt %d: %+v, %v", attempt, s, err)
		}
		m.Close()
	}
	// The job was started 3 times: the next Manager marks it failed.
	m, err := bulk.New(ctx, st, reg, bulk.Options{Dir: dir, Types: types})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.Status(ctx, id)
	if err != nil || s.Status != store.ExportFailed || !strings.Contains(s.Error, "interrupted by 3 server restarts") {
		t.Errorf("after 3 interruptions: %+v, %v", s, err)
	}

	// Interrupted once, a job resumes and exports everything.
	stall := stalling{Store: st, entered: make(chan struct{}, 1)}
	first, err := bulk.New(ctx, stall, reg, bulk.Options{Dir: dir, Types: types})
	if err != nil {
		t.Fatal(err)
	}
	id, err = first.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	<-stall.entered
	first.Close()
	second, err := bulk.New(ctx, st, reg, bulk.Options{Dir: dir, Types: types})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	done := await(t, second, id)
	if done.Status != store.ExportCompleted || done.Attempts != 2 || len(done.Files) != 1 || done.Files[0].Count != 25 {
		t.Errorf("resumed job: %+v", done)
	}
}

// TestExpiry: a finished job and its files go when its time is up, whether
// polled or not.
func TestExpiry(t *testing.T) {
	st, reg, dir := fixture(t, 5)
	ctx := context.Background()
	var now atomic.Int64
	now.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	m, err := bulk.New(ctx, st, reg, bulk.Options{Dir: dir, Types: types, TTL: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	id, err := m.Start(ctx, bulk.Request{Types: types})
	if err != nil {
		t.Fatal(err)
	}
	done := await(t, m, id)
	if want := clock().Add(time.Hour); !done.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", done.Expires, want)
	}
	path, err := m.File(ctx, id, "Observation.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	now.Add(time.Hour.Milliseconds())
	if _, err := m.Status(ctx, id); store.Code(err) != store.ENotFound || !strings.Contains(err.Error(), "expired") {
		t.Errorf("status after expiry: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file after expiry: %v", err)
	}
	// A job nobody polls goes when the next Manager starts.
	id, err = m.Start(ctx, bulk.Request{Types: types})
	if err != nil {
		t.Fatal(err)
	}
	await(t, m, id)
	m.Close()
	now.Add(2 * time.Hour.Milliseconds())
	again, err := bulk.New(ctx, st, reg, bulk.Options{Dir: dir, Types: types, TTL: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := st.ExportJob(ctx, id); store.Code(err) != store.ENotFound {
		t.Errorf("an expired job after a restart: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files after expiry: %v", entries)
	}
}

// TestSnapshot: an export reads one snapshot; what is written after it
// began is not exported, and transactionTime is its latest write.
func TestSnapshot(t *testing.T) {
	st, reg, _ := fixture(t, 3)
	ctx := context.Background()
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	err = st.Update(ctx, func(w store.Writer) error {
		res, _ := fhir.Parse([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"late"}}`))
		body, _ := res.Prepare("late")
		_, _, err := w.Put(store.Put{Type: "Observation", ID: "late", Create: true, Body: body, Index: reg.Extract("Observation", res.Tree)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	late, err := st.Read(ctx, "Observation", "late")
	if err != nil {
		t.Fatal(err)
	}
	if !snap.LastUpdated.Before(late.LastUpdated) {
		t.Errorf("snapshot at %v, later write at %v", snap.LastUpdated, late.LastUpdated)
	}
	var ids []string
	err = snap.Export(ctx, store.ExportQuery{Type: "Observation"}, func(body []byte) error {
		ids = append(ids, string(body[strings.Index(string(body), `"id":"`)+6:][:5]))
		return nil
	})
	if err != nil || strings.Join(ids, " ") != "obs-0 obs-1 obs-2" {
		t.Errorf("the snapshot exported %v, %v", ids, err)
	}
}

// TestCancelRunning: a job cancelled while it runs stops, is gone at once,
// and its run does not save it again.
func TestCancelRunning(t *testing.T) {
	st, reg, dir := fixture(t, 5)
	ctx := context.Background()
	stall := stalling{Store: st, entered: make(chan struct{}, 1)}
	m, err := bulk.New(ctx, stall, reg, bulk.Options{Dir: dir, Types: types})
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Start(ctx, bulk.Request{Types: types})
	if err != nil {
		t.Fatal(err)
	}
	<-stall.entered
	if err := m.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, err := st.ExportJob(ctx, id); store.Code(err) != store.ENotFound {
		t.Errorf("a job cancelled while running: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files after cancel: %v", entries)
	}
}

// TestRestartWithManyUnfinished: a start-up with more unfinished jobs than
// the queue holds starts, and marks the excess failed.
func TestRestartWithManyUnfinished(t *testing.T) {
	st, reg, dir := fixture(t, 1)
	ctx := context.Background()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 80 {
		j := store.ExportJob{ID: fmt.Sprintf("job-%02d", i), Status: store.ExportInProgress, Request: []byte(`{"types":["Observation"]}`),
			Created: created.Add(time.Duration(i) * time.Second), Attempts: 1}
		if err := st.CreateExportJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	m, err := bulk.New(ctx, st, reg, bulk.Options{Dir: dir, Types: types})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	failed := 0
	for i := range 80 {
		s := await(t, m, fmt.Sprintf("job-%02d", i))
		if s.Status == store.ExportFailed && strings.Contains(s.Error, "unfinished exports") {
			failed++
		}
	}
	if failed == 0 || failed > 80-64 {
		t.Errorf("%d of 80 unfinished jobs failed at start-up", failed)
	}
}
