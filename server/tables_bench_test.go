package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"infusion/server"
)

// BenchmarkTables streams the orders and assessments tables of
// $infusion-tables through the HTTP handler, in each format, from a
// database of generated courses (INFUSION_TABLES_BENCH_PATIENTS patients,
// default 3,000: about 105,000 resources, built once in the temporary
// folder). The answer is counted and dropped, not kept. It reports rows
// per second, and the process's peak resident memory at the end.
//
//	go test ./server -run XXX -bench Tables -benchtime 5x -count 3
func BenchmarkTables(b *testing.B) {
	patients := 3000
	if n, err := strconv.Atoi(os.Getenv("INFUSION_TABLES_BENCH_PATIENTS")); err == nil && n > 0 {
		patients = n
	}
	// benchDatabase makes one patient per 35 resources asked for.
	path, _ := benchDatabase(b, patients*35)
	app, err := server.New(context.Background(), server.Config{DBPath: path, ExportDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	h := app.Handler()
	for _, name := range []string{"orders", "assessments"} {
		// The row count, from the CSV answer (its lines less the header).
		w := &countingWriter{header: http.Header{}}
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/$infusion-tables/"+name, nil))
		if w.status != http.StatusOK {
			b.Fatalf("%s: %d", name, w.status)
		}
		rows := w.lines - 1
		for _, format := range []string{"csv", "ndjson", "parquet"} {
			b.Run(name+"/"+format, func(b *testing.B) {
				var size int64
				start := time.Now()
				for range b.N {
					w := &countingWriter{header: http.Header{}}
					h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/$infusion-tables/"+name+"?_format="+format, nil))
					if w.status != http.StatusOK {
						b.Fatalf("%d", w.status)
					}
					size = w.bytes
				}
				b.ReportMetric(float64(rows)*float64(b.N)/time.Since(start).Seconds(), "rows/s")
				b.ReportMetric(float64(rows), "rows")
				b.SetBytes(size)
				if mb := peakRSS(); mb > 0 {
					b.ReportMetric(mb, "peak-RSS-MB")
				}
			})
		}
	}
}

// countingWriter is an http.ResponseWriter that counts what it is sent
// (bytes, line ends) and keeps none of it.
type countingWriter struct {
	header       http.Header
	status       int
	bytes, lines int64
}

func (w *countingWriter) Header() http.Header { return w.header }

func (w *countingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.bytes += int64(len(p))
	w.lines += int64(bytes.Count(p, []byte("\n")))
	return len(p), nil
}

func (w *countingWriter) Flush() {}
