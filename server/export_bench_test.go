package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"infusion/server"
)

// BenchmarkExport measures a system-level Bulk Data export of the search
// benchmark's database (INFUSION_BENCH_RESOURCES, default 1,000,000
// resources): from the kick-off to the manifest, through the HTTP handler.
// It reports resources written per second, and the process's peak resident
// memory (VmHWM) at the end.
//
//	go test ./server -run XXX -bench Export -benchtime 1x -count 3
func BenchmarkExport(b *testing.B) {
	path, _ := benchDatabase(b, benchResources())
	app, err := server.New(context.Background(), server.Config{DBPath: path, ExportDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	h := app.Handler()
	call := func(method, url string, headers ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, url, nil)
		for _, hd := range headers {
			k, v, _ := strings.Cut(hd, ": ")
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var exported int64
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		kick := call(http.MethodGet, "/$export", "Prefer: respond-async")
		if kick.Code != http.StatusAccepted {
			b.Fatalf("kick-off: %d %s", kick.Code, kick.Body)
		}
		status := strings.TrimPrefix(kick.Header().Get("Content-Location"), "http://example.com")
		for {
			rec := call(http.MethodGet, status)
			if rec.Code == http.StatusAccepted {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if rec.Code != http.StatusOK {
				b.Fatalf("status: %d %s", rec.Code, rec.Body)
			}
			var m struct{ Output []struct{ Count int64 } }
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				b.Fatal(err)
			}
			for _, o := range m.Output {
				exported += o.Count
			}
			break
		}
		b.StopTimer()
		call(http.MethodDelete, status)
		b.StartTimer()
	}
	b.ReportMetric(float64(exported)/time.Since(start).Seconds(), "resources/s")
	b.ReportMetric(float64(exported)/float64(b.N), "resources/op")
	if mb := peakRSS(); mb > 0 {
		b.ReportMetric(mb, "peak-RSS-MB")
	}
}

// peakRSS returns the process's peak resident memory in MB, from
// /proc/self/status; 0 where that is not available.
func peakRSS() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}
