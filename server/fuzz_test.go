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
