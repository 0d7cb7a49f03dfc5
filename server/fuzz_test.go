package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"infusion/server"
)

// FuzzCreate posts arbitrary bodies: the server must never answer 500, and
// must answer either 201 or a 4xx.
func FuzzCreate(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/resources/*/*.json")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		var head struct{ ResourceType string }
		json.Unmarshal(data, &head)
		f.Add(head.ResourceType, data)
	}
	f.Add("MedicationRequest", []byte(`{"resourceType":"MedicationRequest"}`))
	f.Add("MedicationRequest", []byte(`{"resourceType":"MedicationRequest","status":"active","intent":"order",`+
		`"medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/1"},`+
		`"dosageInstruction":[{"timing":{"repeat":{"frequency":1.5,"count":0}}}]}`))
	app, err := server.New(context.Background(), server.Config{DBPath: filepath.Join(f.TempDir(), "fuzz.db"), MaxBody: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { app.Close() })
	h := app.Handler()
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/Observation", bytes.NewReader(body))
		if typ == "MedicationRequest" || typ == "MedicationAdministration" {
			req = httptest.NewRequest(http.MethodPost, "/"+typ, bytes.NewReader(body))
		}
		req.Header.Set("Content-Type", "application/fhir+json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated && (rec.Code < 400 || rec.Code >= 500) {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}

// FuzzTransaction posts arbitrary Bundles to the base: decoding, entry
// parsing and reference rewriting must never answer 500, and a 200 is a
// batch-response or transaction-response with one entry per request entry.
func FuzzTransaction(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[` +
		`{"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","request":{"method":"POST","url":"MedicationRequest"},"resource":{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"ketamine"},"subject":{"reference":"Patient/p"}}},` +
		`{"request":{"method":"POST","url":"MedicationAdministration"},"resource":{"resourceType":"MedicationAdministration","status":"completed","medicationCodeableConcept":{"text":"ketamine"},"subject":{"reference":"Patient/p"},"effectiveDateTime":"2026-01-01","request":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Observation?status=final&_count=1"}},` +
		`{"request":{"method":"DELETE","url":"Observation?code=x"}},{"request":{"method":"PATCH","url":"Observation/a"},"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"W10="}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PUT","url":"Observation?identifier=a|b"},` +
		`"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"contained":[{"resourceType":"Observation","id":"c","status":"final","code":{"text":"y"}}],"hasMember":[{"reference":"#c"},{"reference":"MedicationRequest?identifier=x|1"}]}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Observation"}}]}`))
	app, err := server.New(context.Background(), server.Config{DBPath: filepath.Join(f.TempDir(), "fuzz.db"), MaxBody: 64 << 10, MaxEntries: 50})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { app.Close() })
	h := app.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || (rec.Code != http.StatusOK && rec.Code < 400) {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code != http.StatusOK {
			return
		}
		var sent, got struct {
			Type  string
			Entry []json.RawMessage
		}
		json.Unmarshal(body, &sent)
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Type != sent.Type+"-response" || len(got.Entry) != len(sent.Entry) {
			t.Fatalf("answer %s to %s", rec.Body, body)
		}
	})
}
