package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"infusion/fhir"
	"infusion/mapping"
	"infusion/mapping/synth"
	"infusion/server"
	"infusion/store"
)

// benchResources is the size of the search benchmark's database: 1,000,000
// resources unless INFUSION_BENCH_RESOURCES says otherwise.
func benchResources() int {
	if n, err := strconv.Atoi(os.Getenv("INFUSION_BENCH_RESOURCES")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// benchDatabase returns a database of generated infusion courses with at
// least n resources, built once and kept in the temporary folder (building
// a million takes minutes). It returns the number of patients.
func benchDatabase(b *testing.B, n int) (string, int) {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("infusion-search-bench-%d-v3.db", n))
	patients := n/35 + 1 // a generated patient has about 35 resources
	if _, err := os.Stat(path); err == nil {
		return path, patients
	}
	b.Logf("building %s with %d patients (once)", path, patients)
	start := time.Now()
	tmp := path + ".building"
	os.Remove(tmp)
	st, err := store.Open(context.Background(), tmp, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	mapper := mapping.NewMapper(mapping.DefaultClassifier())
	gen := synth.New(synth.Config{Patients: patients, Seed: 1})
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	total := 0
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range work {
				var puts []store.Put
				for i := first; i < min(first+50, patients); i++ {
					for _, r := range gen.Patient(i) {
						res, err := fhir.Parse(r.JSON)
						if err != nil {
							b.Error(err)
							return
						}
						prepared, _ := res.Prepare(r.ID)
						rows, _ := mapper.Map(r.Type, r.ID, r.JSON)
						puts = append(puts, store.Put{Type: r.Type, ID: r.ID, Create: true, Body: prepared, Rows: rows})
					}
				}
				err := st.Update(context.Background(), func(w store.Writer) error {
					for _, p := range puts {
						if _, _, err := w.Put(p); err != nil {
							return err
						}
					}
					return nil
				})
				mu.Lock()
				total += len(puts)
				if err != nil {
					failed = err
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < patients; i += 50 {
		work <- i
	}
	close(work)
	wg.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("stored %d resources in %v; building the search index", total, time.Since(start).Round(time.Second))
	// The server finds no index fingerprint and builds the index.
	indexStart := time.Now()
	app, err := server.New(context.Background(), server.Config{DBPath: tmp})
	if err != nil {
		b.Fatal(err)
	}
	if err := app.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexed in %v", time.Since(indexStart).Round(time.Second))
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	os.Remove(tmp + "-wal")
	os.Remove(tmp + "-shm")
	b.Logf("built %d resources in %v", total, time.Since(start).Round(time.Second))
	return path, patients
}

// BenchmarkSearch measures the latency of typical searches over a large
// database (INFUSION_BENCH_RESOURCES, default 1,000,000 resources) through
// the whole HTTP handler, and reports the median and 99th percentile.
//
//	go test ./server -run XXX -bench Search -benchtime 200x
func BenchmarkSearch(b *testing.B) {
	path, patients := benchDatabase(b, benchResources())
	app, err := server.New(context.Background(), server.Config{DBPath: path})
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	h := app.Handler()
	get := func(b *testing.B, url string) []byte {
		req := httptest.NewRequest(http.MethodGet, url, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", url, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	rng := rand.New(rand.NewPCG(2, 2))
	patient := func() string { return synth.PatientID(rng.IntN(patients)) }
	// The 50th page of a broad search: the first 49 next links are followed
	// once, outside the timing; each iteration then reads page 50.
	page50 := "/Observation?code=http://loinc.org|72514-3&_count=20"
	for range 49 {
		body := get(b, page50)
		i := strings.Index(string(body), `"relation":"next","url":"`)
		if i < 0 {
			b.Fatal("fewer than 50 pages")
		}
		rest := string(body[i+len(`"relation":"next","url":"`):])
		page50 = strings.TrimPrefix(rest[:strings.IndexByte(rest, '"')], "http://example.com")
	}
	queries := []struct {
		name string
		url  func() string
	}{
		{"patient+code+date", func() string {
			return "/Observation?patient=Patient/" + patient() + "&code=http://loinc.org|72514-3&date=ge2025-01-01"
		}},
		{"identifier", func() string {
			return "/MedicationRequest?identifier=" + synth.OrderSystem + "|" + synth.OrderIdentifier(rng.IntN(patients))
		}},
		{"status+patient", func() string { return "/MedicationRequest?status=active&patient=Patient/" + patient() }},
		{"include", func() string {
			return "/MedicationAdministration?patient=Patient/" + patient() + "&_include=MedicationAdministration:request"
		}},
		{"has", func() string { return "/MedicationRequest?_has:MedicationAdministration:request:status=stopped" }},
		{"page50", func() string { return page50 }},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				url := q.url()
				start := time.Now()
				get(b, url)
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
