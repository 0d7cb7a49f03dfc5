package fhir_test

import (
	"sort"
	"strings"
	"testing"
	"time"

	"infusion/fhir"
	"infusion/fhir/fhirtest"
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		in   string
		want fhir.Reference
	}{
		{"Patient/p1", fhir.Reference{Kind: fhir.RefLiteral, Type: "Patient", ID: "p1"}},
		{"MedicationRequest/abc-1.2/_history/3", fhir.Reference{Kind: fhir.RefLiteral, Type: "MedicationRequest", ID: "abc-1.2", Version: "3"}},
		{"https://fhir.example.org/r4/Patient/9", fhir.Reference{Kind: fhir.RefLiteral, Base: "https://fhir.example.org/r4", Type: "Patient", ID: "9"}},
		{"http://example.org/Patient/9/_history/2", fhir.Reference{Kind: fhir.RefLiteral, Base: "http://example.org", Type: "Patient", ID: "9", Version: "2"}},
		{"#med1", fhir.Reference{Kind: fhir.RefContained, ID: "med1"}},
		{"#", fhir.Reference{Kind: fhir.RefContained}},
		{"urn:uuid:1b7e3a5c-5d4e-4e1a-9a2b-3c4d5e6f7a8b", fhir.Reference{Kind: fhir.RefURN}},
		{"urn:oid:1.2.3", fhir.Reference{Kind: fhir.RefURN}},
		{"MedicationRequest?identifier=http://x|1", fhir.Reference{Kind: fhir.RefConditional, Type: "MedicationRequest", Query: "identifier=http://x|1"}},
		{"http://example.org/fhir/StructureDefinition/x", fhir.Reference{Kind: fhir.RefLiteral, Base: "http://example.org/fhir", Type: "StructureDefinition", ID: "x"}},
		{"http://example.org/guides/x", fhir.Reference{Kind: fhir.RefAbsolute}},
		{"http://example.org", fhir.Reference{Kind: fhir.RefAbsolute}},
		{"1234", fhir.Reference{Kind: fhir.RefInvalid}},
		{"patient/1", fhir.Reference{Kind: fhir.RefInvalid}},
		{"Patient/1/extra", fhir.Reference{Kind: fhir.RefInvalid}},
		{"Patient/bad_id", fhir.Reference{Kind: fhir.RefInvalid}},
		{"#bad id", fhir.Reference{Kind: fhir.RefInvalid}},
		{"Patient/" + strings.Repeat("x", 65), fhir.Reference{Kind: fhir.RefInvalid}},
	}
	for _, tt := range tests {
		if got := fhir.ParseReference(tt.in); got != tt.want {
			t.Errorf("ParseReference(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseDateTime(t *testing.T) {
	tests := []struct {
		in        string
		start     string
		end       string
		precision fhir.Precision
	}{
		{"2026", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", fhir.PrecisionYear},
		{"2026-03", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", fhir.PrecisionMonth},
		{"2026-03-15", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z", fhir.PrecisionDay},
		{"2026-03-15T10:30:00+01:00", "2026-03-15T09:30:00Z", "2026-03-15T09:30:01Z", fhir.PrecisionSecond},
		{"2026-03-15T10:30:00.000+01:00", "2026-03-15T09:30:00Z", "2026-03-15T09:30:00.001Z", fhir.PrecisionFraction},
		{"2026-03-15T10:30:00.250Z", "2026-03-15T10:30:00.25Z", "2026-03-15T10:30:00.251Z", fhir.PrecisionFraction},
	}
	for _, tt := range tests {
		got, err := fhir.ParseDateTime(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got.Time.Format(time.RFC3339Nano) != tt.start || got.End().Format(time.RFC3339Nano) != tt.end || got.Precision != tt.precision {
			t.Errorf("%s: start %s end %s precision %d", tt.in, got.Time.Format(time.RFC3339Nano), got.End().Format(time.RFC3339Nano), got.Precision)
		}
	}
	for _, bad := range []string{"", "2026-13", "2026-03-15T10:30", "2026-03-15T10:30:00", "yesterday", "20260315"} {
		if _, err := fhir.ParseDateTime(bad); err == nil {
			t.Errorf("ParseDateTime(%q) accepted", bad)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		"not JSON":           `{"resourceType":`,
		"duplicate member":   `{"resourceType":"Observation","status":"final","status":"final"}`,
		"trailing data":      `{"resourceType":"Observation"} {}`,
		"array":              `[{"resourceType":"Observation"}]`,
		"no resourceType":    `{"status":"final"}`,
		"bad resourceType":   `{"resourceType":"observation"}`,
		"numeric type":       `{"resourceType":1}`,
		"invalid UTF-8":      "{\"resourceType\":\"Observation\",\"status\":\"\xff\"}",
		"too deep":           `{"resourceType":"Observation","extension":` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100) + `}`,
		"empty":              ``,
		"bare string":        `"Observation"`,
		"unterminated array": `{"resourceType":"Observation","category":[`,
	}
	for name, in := range tests {
		_, err := fhir.Parse([]byte(in))
		fe, ok := err.(*fhir.Error)
		if !ok || fe.Kind != fhir.KindInvalid || len(fe.Issues) == 0 {
			t.Errorf("%s: err = %v, want a KindInvalid *fhir.Error", name, err)
		}
	}
}

func TestPrepare(t *testing.T) {
	in := `{
	  "meta": {"versionId": "9", "lastUpdated": "2001-01-01T00:00:00Z", "tag": [{"code": "x"}]},
	  "resourceType": "Observation",
	  "id": "client",
	  "status": "final",
	  "_status": {"extension": [{"url": "http://example.org/e", "valueString": "<b>&</b>"}]},
	  "valueQuantity": {"value": 0.50, "unit": "mg"},
	  "note": [{"text": "caf\u00e9   spaced"}]
	}`
	r, err := fhir.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Prepare("server-id")
	if err != nil {
		t.Fatal(err)
	}
	got := string(p.Bytes(2, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)))
	want := `{"resourceType":"Observation","id":"server-id","meta":{"versionId":"2","lastUpdated":"2026-03-01T10:00:00.000Z",` +
		`"tag":[{"code":"x"}]},"status":"final","_status":{"extension":[{"url":"http://example.org/e","valueString":"<b>&</b>"}]},` +
		`"valueQuantity":{"value":0.50,"unit":"mg"},"note":[{"text":"caf\u00e9   spaced"}]}`
	if got != want {
		t.Errorf("stored JSON:\n got %s\nwant %s", got, want)
	}
}

// FuzzParse checks the round-trip property of the wire layer: whatever
// parses must prepare to JSON that parses again to the same meaning.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Observation","status":"final","valueQuantity":{"value":1.50}}`))
	f.Add([]byte(`{"resourceType":"MedicationRequest","meta":{"tag":[{"code":"a"}]},"id":"x","_authoredOn":{"id":"1"}}`))
	f.Add([]byte(`{"resourceType":"Observation","text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a &amp; b</div>"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := fhir.Parse(data)
		if err != nil {
			return
		}
		p, err := r.Prepare("id1")
		if err != nil {
			if _, isMap := r.Tree["meta"].(map[string]any); isMap || r.Tree["meta"] == nil {
				t.Fatalf("prepare failed: %v", err)
			}
			return
		}
		out := p.Bytes(1, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		again, err := fhir.Parse(out)
		if err != nil {
			t.Fatalf("prepared JSON does not parse: %v\n%s", err, out)
		}
		delete(r.Tree, "id")
		delete(again.Tree, "id")
		for _, tree := range []map[string]any{r.Tree, again.Tree} {
			if meta, ok := tree["meta"].(map[string]any); ok {
				delete(meta, "versionId")
				delete(meta, "lastUpdated")
				if len(meta) == 0 {
					delete(tree, "meta")
				}
			}
		}
		a, _ := fhir.Marshal(r.Tree)
		b, _ := fhir.Marshal(again.Tree)
		if same, err := fhirtest.EqualJSON(a, b); err != nil || !same {
			t.Fatalf("meaning changed:\n%s\n%s", a, b)
		}
	})
}

func TestRewriteReferences(t *testing.T) {
	in := `{"resourceType":"Observation","subject":{"reference":"urn:uuid:1"},"note":[{"text":"reference"}],
		"extension":[{"url":"x","valueReference":{"reference":"urn:uuid:2","display":"urn:uuid:1"}}],
		"contained":[{"resourceType":"Medication","id":"m","ingredient":[{"itemReference":{"reference":"urn:uuid:1"}}]}],
		"valueQuantity":{"value":0.50}}`
	m := map[string]string{"urn:uuid:1": "Patient/p1", "urn:uuid:2": "MedicationRequest/o1"}
	out, changed, err := fhir.RewriteReferences([]byte(in), func(ref string) (string, bool) {
		s, ok := m[ref]
		return s, ok
	})
	if err != nil || !changed {
		t.Fatal(err, changed)
	}
	want := `{"resourceType":"Observation","subject":{"reference":"Patient/p1"},"note":[{"text":"reference"}],"extension":[{"url":"x","valueReference":{"reference":"MedicationRequest/o1","display":"urn:uuid:1"}}],"contained":[{"resourceType":"Medication","id":"m","ingredient":[{"itemReference":{"reference":"Patient/p1"}}]}],"valueQuantity":{"value":0.50}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	r, err := fhir.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	fhir.EachReference(r.Tree, func(ref string) { refs = append(refs, ref) })
	sort.Strings(refs)
	if got := strings.Join(refs, " "); got != "urn:uuid:1 urn:uuid:1 urn:uuid:2" {
		t.Errorf("EachReference found %s", got)
	}
}
