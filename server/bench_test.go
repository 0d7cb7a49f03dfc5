package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync/atomic"
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

// courseTransaction builds a transaction of n entries: infusion courses of
// one order, three administrations of it and six observations of those,
// linked by urn:uuid references.
func courseTransaction(tb testing.TB, n int) []byte {
	tb.Helper()
	var ord, admin, obs map[string]any
	for name, into := range map[string]*map[string]any{
		"valid/medicationrequest-ketamine-crps.json":             &ord,
		"valid/medicationadministration-ketamine-completed.json": &admin,
		"valid/observation-pain-before.json":                     &obs,
	} {
		if err := json.Unmarshal([]byte(example(tb, name)), into); err != nil {
			tb.Fatal(err)
		}
	}
	urn := func(kind string, i int) string {
		return fmt.Sprintf("urn:uuid:%08d-0000-4000-8000-%012d", i, kindCode[kind])
	}
	var list []any
	add := func(fullURL, typ string, res map[string]any) {
		list = append(list, map[string]any{"fullUrl": fullURL, "resource": res, "request": map[string]any{"method": "POST", "url": typ}})
	}
	for i := 0; len(list) < n; i++ {
		o := maps.Clone(ord)
		o["identifier"] = []any{map[string]any{"system": orderSystem, "value": fmt.Sprintf("BENCH-%d", i)}}
		add(urn("order", i), "MedicationRequest", o)
		for s := 0; s < 3 && len(list) < n; s++ {
			a := maps.Clone(admin)
			a["request"] = map[string]any{"reference": urn("order", i)}
			add(urn("admin", i*3+s), "MedicationAdministration", a)
			for k := 0; k < 2 && len(list) < n; k++ {
				ob := maps.Clone(obs)
				ob["partOf"] = []any{map[string]any{"reference": urn("admin", i*3+s)}}
				add(urn("obs", i*6+s*2+k), "Observation", ob)
			}
		}
	}
	data, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": list})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

var kindCode = map[string]int{"order": 1, "admin": 2, "obs": 3}

// BenchmarkTransaction posts transactions of 1,000 entries — orders,
// administrations and observations with cross references — one at a time:
// entry parsing and validation, reference rewriting, mapping, and one
// SQLite transaction for all the writes.
func BenchmarkTransaction(b *testing.B) {
	const entries = 1000
	ts := newTestServer(b, server.Config{})
	body := courseTransaction(b, entries)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchRequest(b, http.MethodPost, ts.URL+"/", body)
	}
	b.ReportMetric(float64(b.N*entries)/b.Elapsed().Seconds(), "resources/s")
}

// BenchmarkCreateProtocol measures what the protocol checks cost a create:
// the same parallel creates of ketamine orders under -protocol off and
// warn. "checked" orders pass every rule (the patient has a weight and a
// baseline pain score; the orders are completed, so no duplicate therapy);
// "finding" orders are active orders for a new patient each, which lack a
// baseline pain score: one DetectedIssue is written with each.
func BenchmarkCreateProtocol(b *testing.B) {
	fixtures, _ := loadProtocolCases(b)
	for _, kind := range []string{"checked", "finding"} {
		for _, policy := range []server.Policy{server.PolicyOff, server.PolicyWarn} {
			b.Run(kind+"/"+string(policy), func(b *testing.B) {
				ts := newTestServer(b, server.Config{Protocol: policy})
				for _, it := range fixtures["ketamine-patient"] {
					r := ts.do(b, http.MethodPut, "/"+it.Type+"/"+it.ID, it.body(b))
					if r.status != http.StatusCreated {
						b.Fatalf("%d %s", r.status, r.body)
					}
				}
				var order map[string]any
				if err := json.Unmarshal([]byte(example(b, "valid/medicationrequest-ketamine-crps.json")), &order); err != nil {
					b.Fatal(err)
				}
				if kind == "checked" {
					order["status"] = "completed"
				}
				var n atomic.Int64
				b.SetParallelism(8)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					body := maps.Clone(order)
					for pb.Next() {
						if kind == "finding" {
							body["subject"] = map[string]any{"reference": fmt.Sprintf("Patient/bench-%d", n.Add(1))}
						}
						raw, _ := json.Marshal(body)
						benchRequest(b, http.MethodPost, ts.URL+"/MedicationRequest", raw)
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			})
		}
	}
}

// BenchmarkCourse reads the treatment course of a ketamine order with ten
// sessions (each with pain scores before and after and vital signs every
// 15 minutes) and the patient's summary, over loopback HTTP from parallel
// clients, in a database that also holds 200 other patients' courses.
func BenchmarkCourse(b *testing.B) {
	ts := newTestServer(b, server.Config{})
	put := func(it protocolItem) {
		benchRequest(b, http.MethodPut, ts.URL+"/"+it.Type+"/"+it.ID, []byte(it.body(b)))
	}
	for p := 0; p <= 200; p++ {
		patient, order := "pat-crps-1", "ketamine-order-1"
		if p > 0 {
			patient, order = fmt.Sprintf("bench-%d", p), fmt.Sprintf("order-%d", p)
		}
		subject := fmt.Sprintf(`{"op":"replace","path":"/subject/reference","value":"Patient/%s"}`, patient)
		put(protocolItem{Type: "Observation", ID: "weight-" + patient, File: "observation-body-weight.json",
			Patch: json.RawMessage(`[` + subject + `]`)})
		put(protocolItem{Type: "MedicationRequest", ID: order, File: "medicationrequest-ketamine-crps.json",
			Patch: json.RawMessage(`[` + subject + `,{"op":"replace","path":"/dosageInstruction/0/timing/repeat/count","value":10}]`)})
		for s := 1; s <= 10; s++ {
			adm := fmt.Sprintf("%s-s%d", order, s)
			day := fmt.Sprintf("2024-03-%02d", 10+s)
			put(protocolItem{Type: "MedicationAdministration", ID: adm, File: "medicationadministration-ketamine-completed.json",
				Patch: json.RawMessage(fmt.Sprintf(`[%s,{"op":"replace","path":"/request/reference","value":"MedicationRequest/%s"},
				{"op":"replace","path":"/effectivePeriod","value":{"start":"%sT09:00:00+01:00","end":"%sT13:00:00+01:00"}}]`, subject, order, day, day))})
			for _, o := range []struct{ file, time string }{{"observation-pain-before.json", "08:50"}, {"observation-pain-after.json", "13:15"},
				{"observation-bp-during.json", "09:30"}, {"observation-bp-during.json", "10:30"}, {"observation-heart-rate.json", "09:30"},
				{"observation-spo2.json", "09:30"}} {
				put(protocolItem{Type: "Observation", ID: fmt.Sprintf("%s-%s-%s", adm, o.file[12:len(o.file)-5], o.time[:2]), File: o.file,
					Patch: json.RawMessage(fmt.Sprintf(`[%s,{"op":"replace","path":"/effectiveDateTime","value":"%sT%s:00+01:00"},
					{"op":"replace","path":"/partOf","value":[{"reference":"MedicationAdministration/%s"}]}]`, subject, day, o.time, adm))})
			}
		}
	}
	for _, bench := range []struct{ name, path string }{
		{"course", "/MedicationRequest/ketamine-order-1/$course"},
		{"summary", "/Patient/pat-crps-1/$infusion-summary"},
		{"monitoring", "/MedicationAdministration/ketamine-order-1-s1/$monitoring"},
	} {
		b.Run(bench.name, func(b *testing.B) {
			b.SetParallelism(4)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchRequest(b, http.MethodGet, ts.URL+bench.path, nil)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "answers/s")
		})
	}
}
