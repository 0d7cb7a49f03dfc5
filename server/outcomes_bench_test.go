package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"infusion/server"
)

// BenchmarkOutcomes measures $infusion-outcomes through the HTTP handler
// over a database of generated courses, one a patient
// (INFUSION_OUTCOMES_BENCH_COURSES, default 100,000; built once in the
// temporary folder, which takes a while), without and with groups and a
// filter. It reports the median and 90th percentile latency.
//
//	go test ./server -run XXX -bench Outcomes -benchtime 5x
func BenchmarkOutcomes(b *testing.B) {
	courses := 100_000
	if n, err := strconv.Atoi(os.Getenv("INFUSION_OUTCOMES_BENCH_COURSES")); err == nil && n > 0 {
		courses = n
	}
	// benchDatabase makes one course per 35 resources asked for.
	path, patients := benchDatabase(b, courses*35)
	app, err := server.New(context.Background(), server.Config{DBPath: path, ExportDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	h := app.Handler()
	for _, q := range []string{"", "?group-by=drug-class,condition", "?group-by=month&drug-class=ketamine&period=ge2025-03-01"} {
		b.Run("query="+q, func(b *testing.B) {
			var took []time.Duration
			for range b.N {
				start := time.Now()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/$infusion-outcomes"+q, nil))
				took = append(took, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
			b.ReportMetric(float64(took[len(took)*9/10].Milliseconds()), "p90-ms")
			b.ReportMetric(float64(patients), "courses")
		})
	}
}
