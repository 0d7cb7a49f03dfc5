package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"infusion/server"
)

// benchClient is an HTTP client with enough idle connections for parallel
// benchmarks.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func benchRequest(b *testing.B, method, url string, body []byte) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		b.Fatalf("%s %s: %d", method, url, resp.StatusCode)
	}
}

// BenchmarkCreate posts validated MedicationRequests over loopback HTTP from
// parallel clients: schema and rule validation, mapping, and a group-committed
// SQLite write per request.
func BenchmarkCreate(b *testing.B) {
	ts := newTestServer(b, server.Config{})
	body := []byte(example(b, "valid/medicationrequest-ketamine-crps.json"))
	b.SetParallelism(8) // 16 clients on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchRequest(b, http.MethodPost, ts.URL+"/MedicationRequest", body)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkRead reads resources by id over loopback HTTP from parallel clients.
func BenchmarkRead(b *testing.B) {
	ts := newTestServer(b, server.Config{})
	body := example(b, "valid/medicationrequest-ketamine-crps.json")
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = ts.create(b, "MedicationRequest", body)
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			benchRequest(b, http.MethodGet, ts.URL+"/MedicationRequest/"+ids[i%len(ids)], nil)
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}
