package bulk

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"infusion/fhir"
	"infusion/fhir/search"
	"infusion/store"
)

// Request is what a kick-off asked for; it is kept with the job, so that a
// job started again after a restart exports the same selection.
type Request struct {
	URL          string    `json:"url"`                // the kick-off request, for the manifest
	Patients     bool      `json:"patients,omitempty"` // Patient/$export: the Patient compartment
	Types        []string  `json:"types"`
	Since        time.Time `json:"since,omitzero"`
	TypeFilters  []string  `json:"typeFilters,omitempty"` // Type?query, each a search
	OutputFormat string    `json:"outputFormat"`
}

// OutputFormats are the _outputFormat values accepted: all mean NDJSON.
var OutputFormats = []string{"application/fhir+ndjson", "application/ndjson", "ndjson"}

// kickOffParams are the kick-off parameters this server supports.
var kickOffParams = map[string]bool{"_outputFormat": true, "_since": true, "_type": true, "_typeFilter": true, "_format": true, "_pretty": true}

// Parse reads the parameters of a kick-off request: GET /$export (patients
// false) or GET /Patient/$export. A parameter this server does not support
// is an error unless lenient; an unknown type, a bad _since or a
// _typeFilter that is not a valid search is always one.
func (m *Manager) Parse(params url.Values, patients, lenient bool) (Request, error) {
	req := Request{Patients: patients, OutputFormat: OutputFormats[0]}
	for name := range params {
		if !kickOffParams[name] && !lenient {
			return req, fhir.Errorf(fhir.KindInvalid, fhir.IssueNotSupported, name,
				"%s is not a kick-off parameter this server supports (it supports _outputFormat, _since, _type and _typeFilter)", name)
		}
	}
	if f := strings.ReplaceAll(params.Get("_outputFormat"), " ", "+"); f != "" {
		if !slices.Contains(OutputFormats, f) {
			return req, fhir.Errorf(fhir.KindInvalid, fhir.IssueNotSupported, "_outputFormat",
				"_outputFormat %s is not supported: use %s", f, strings.Join(OutputFormats, ", "))
		}
		req.OutputFormat = f
	}
	if s := strings.ReplaceAll(params.Get("_since"), " ", "+"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return req, fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "_since",
				"_since %q is not a FHIR instant such as 2026-01-01T00:00:00Z", s)
		}
		req.Since = t
	}
	exportable := m.exportable(patients)
	for _, v := range params["_type"] {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if !slices.Contains(exportable, t) {
				return req, fhir.Errorf(fhir.KindInvalid, fhir.IssueNotSupported, "_type",
					"_type %s is not a type this export holds (%s)", t, strings.Join(exportable, ", "))
			}
			if !slices.Contains(req.Types, t) {
				req.Types = append(req.Types, t)
			}
		}
	}
	if len(req.Types) == 0 {
		req.Types = exportable
	}
	for _, v := range params["_typeFilter"] {
		req.TypeFilters = append(req.TypeFilters, splitQueries(v)...)
	}
	queries, err := m.queries(req)
	if err != nil {
		return req, err
	}
	for _, q := range queries {
		if err := store.CheckExport(q); err != nil {
			return req, fhir.Errorf(fhir.KindInvalid, fhir.IssueNotSupported, "_typeFilter", "_typeFilter on %s: %v", q.Type, err)
		}
	}
	return req, nil
}

// exportable returns the types an export may hold: every stored type, or
// for a Patient export those in the Patient compartment.
func (m *Manager) exportable(patients bool) []string {
	var out []string
	for _, t := range m.opts.Types {
		if !patients || len(m.registry.CompartmentParams(t)) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// resultParams are search parameters that shape a result rather than
// select resources: meaningless in a _typeFilter.
var resultParams = []string{"_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total", "_page", "_contained", "_containedType"}

// typeFilter parses one _typeFilter query, Type?search.
func (m *Manager) typeFilter(types []string, f string) (string, *search.Query, error) {
	typ, query, ok := strings.Cut(f, "?")
	if !ok || !slices.Contains(types, typ) {
		return "", nil, fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "_typeFilter",
			"_typeFilter %q is not a search on one of the exported types (%s) such as MedicationRequest?status=active", f, strings.Join(types, ", "))
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return "", nil, fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "_typeFilter", "_typeFilter %q is not a query string: %v", f, err)
	}
	for _, p := range resultParams {
		if values.Has(p) {
			return "", nil, fhir.Errorf(fhir.KindInvalid, fhir.IssueNotSupported, "_typeFilter",
				"_typeFilter %q: %s shapes a result; a _typeFilter takes search parameters only", f, p)
		}
	}
	q, err := m.registry.Parse([]string{typ}, values, search.Options{Strict: true, Now: m.opts.Now()})
	if err != nil {
		return "", nil, fmt.Errorf("_typeFilter %q: %w", f, err)
	}
	return typ, q, nil
}

// splitQueries splits a _typeFilter value into its queries: at each comma
// that starts another Type?… (a comma inside a query, between OR values,
// stays).
func splitQueries(v string) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		if v[i] != ',' {
			continue
		}
		rest := v[i+1:]
		if q := strings.IndexByte(rest, '?'); q > 0 && isTypeName(rest[:q]) {
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// isTypeName reports whether s looks like a resource type: a capital letter
// then letters.
func isTypeName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}

// queries turns a request into the store's queries, one per type.
func (m *Manager) queries(req Request) ([]store.ExportQuery, error) {
	out := make([]store.ExportQuery, 0, len(req.Types))
	for _, t := range req.Types {
		q := store.ExportQuery{Type: t, Since: req.Since}
		if req.Patients {
			q.Compartment = &store.Compartment{Params: m.registry.CompartmentParams(t), Type: "Patient"}
		}
		out = append(out, q)
	}
	for _, f := range req.TypeFilters {
		typ, filter, err := m.typeFilter(req.Types, f)
		if err != nil {
			return nil, err
		}
		i := slices.Index(req.Types, typ)
		out[i].Filters = append(out[i].Filters, filter)
	}
	return out, nil
}

// Manifest is the body of a completed job's status.
type Manifest struct {
	TransactionTime     string   `json:"transactionTime"`
	Request             string   `json:"request"`
	RequiresAccessToken bool     `json:"requiresAccessToken"`
	Output              []Output `json:"output"`
	// Deleted, for an export with _since, are files of transaction
	// Bundles deleting the resources deleted since.
	Deleted []Output `json:"deleted,omitzero"`
	Error   []Output `json:"error"`
}

// Output is one file of a manifest.
type Output struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int64  `json:"count"`
}

// Manifest returns the manifest of a completed job, its files' URLs made
// by fileURL.
func (st Status) Manifest(fileURL func(name string) string) Manifest {
	out := Manifest{TransactionTime: fhir.FormatInstant(st.TransactionTime), Request: st.Request.URL,
		Output: []Output{}, Error: []Output{}}
	for _, f := range st.Files {
		if f.Deleted {
			out.Deleted = append(out.Deleted, Output{Type: "Bundle", URL: fileURL(f.Name), Count: f.Count})
		} else {
			out.Output = append(out.Output, Output{Type: f.Type, URL: fileURL(f.Name), Count: f.Count})
		}
	}
	if !st.Request.Since.IsZero() && !st.Request.Patients && out.Deleted == nil {
		out.Deleted = []Output{}
	}
	return out
}
