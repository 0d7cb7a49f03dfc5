package kit_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"infusion/conformance/kit"
	"infusion/server/servertest"
)

var searchSuites = []string{"search", "bundles"}

func TestSearchAndBundlesAgainstThisServer(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	rep := run(t, kit.Options{Base: ts.URL, Suites: searchSuites})
	for _, c := range rep.Checks {
		if c.Status == kit.Fail {
			t.Errorf("%s (%s) failed: %s", c.Name(), c.Level, c.Reason)
		}
		if c.Status == kit.Skip && c.Reason == "" {
			t.Errorf("%s skipped without a reason", c.Name())
		}
		if !slices.Contains(searchSuites, c.Suite) || c.ID == "" || c.Title == "" || c.Level == "" || !strings.HasPrefix(c.Spec, "https://hl7.org/fhir/R4/") {
			t.Errorf("check %+v lacks an id, title, suite, level or spec", c)
		}
	}
	// What must have run, and passed, against this server.
	for _, name := range []string{
		"search.param.status [Observation]", "search.param.code [Observation]", "search.param.subject [Observation]",
		"search.param.patient [Observation]", "search.param.date [Observation]", "search.param.value-quantity [Observation]",
		"search.param.identifier [Observation]", "search.param.value-string [Observation]", "search.param.based-on [Observation]",
		"search.param.authoredon [MedicationRequest]", "search.param.intent [MedicationRequest]",
		"search.param.request [MedicationAdministration]", "search.param.effective-time [MedicationAdministration]",
		// values derived from the parameters' expressions
		"search.param._lastUpdated [Observation]", "search.param._tag [Observation]", "search.param._security [Observation]",
		"search.param._profile [Observation]", "search.param._source [MedicationRequest]",
		"search.param.combo-code [Observation]", "search.param.component-data-absent-reason [Observation]",
		"search.param.data-absent-reason [Observation]", "search.param.value-concept [Observation]", "search.param.value-date [Observation]",
		"search.param.code-value-quantity [Observation]", "search.param.combo-code-value-concept [Observation]",
		"search.param.component-code-value-quantity [Observation]", "search.param.code-value-string [Observation]",
		"search.param.has-member [Observation]", "search.param.focus [Observation]", "search.param.method [Observation]",
		"search.param.medication [MedicationRequest]", "search.param.date [MedicationRequest]", "search.param.intended-dispenser [MedicationRequest]",
		"search.param.intended-performertype [MedicationRequest]", "search.param.priority [MedicationRequest]",
		"search.param.reason-given [MedicationAdministration]", "search.param.reason-not-given [MedicationAdministration]",
		"search.param.performer [MedicationAdministration]", "search.param.context [MedicationAdministration]",
		"search.date.ge [Observation]", "search.date.le [Observation]", "search.date.year [Observation]",
		"search.string.default [Observation]", "search.string.exact [Observation]", "search.string.contains [Observation]",
		"search.count [Observation]", "search.paging.next [Observation]", "search.sort [Observation]",
		"search.include [Observation]", "search.include [MedicationAdministration]", "search.revinclude [MedicationRequest]",
		"search.revinclude [MedicationAdministration]", "search.revinclude [Observation]", "search.param.part-of [Observation]",
		"search.summary-count [Observation]", "search.elements [Observation]", "search.total-accurate [Observation]",
		"search.post [Observation]", "search.post [MedicationRequest]",
		// chaining: reference parameters leading to the run's own resources
		"search.chain.request [MedicationAdministration]", "search.chain.based-on [Observation]",
		"search.chain.part-of [Observation]", "search.chain.derived-from [Observation]",
		"bundles.transaction.status", "bundles.transaction.response", "bundles.transaction.urn-uuid",
		"bundles.transaction.reject", "bundles.transaction.atomic",
		"bundles.batch.status", "bundles.batch.entries", "bundles.batch.created",
	} {
		if !slices.ContainsFunc(rep.Checks, func(c kit.Check) bool { return c.Name() == name && c.Status == kit.Pass }) {
			t.Errorf("%s did not pass", name)
		}
	}
	// Undeclared or underivable: skipped with the reason.
	for name, reason := range map[string]string{
		"search.has [Observation]":         "does not declare _has",
		"search.setup [Patient]":           "does not declare search-type for Patient",
		"search.chain [MedicationRequest]": "no declared reference parameter of MedicationRequest leads to a resource the kit created",
	} {
		i := slices.IndexFunc(rep.Checks, func(c kit.Check) bool { return c.Name() == name })
		if i < 0 || rep.Checks[i].Status != kit.Skip || !strings.Contains(rep.Checks[i].Reason, reason) {
			t.Errorf("%s: want a skip saying %q, got %+v", name, reason, i)
		}
	}
	// Every declared parameter of the types the kit creates is tested: the
	// values come from the parameters' expressions on data built to match.
	params, skipped := 0, 0
	for _, c := range rep.Checks {
		if !strings.HasPrefix(c.ID, "search.param.") {
			continue
		}
		params++
		if c.Status == kit.Skip {
			skipped++
			t.Logf("%s skipped: %s", c.Name(), c.Reason)
			if c.Reason == "" {
				t.Errorf("%s skipped without a reason", c.Name())
			}
		}
	}
	if params < 80 || skipped >= 10 {
		t.Errorf("%d of %d search.param checks skipped; want fewer than 10 of at least 80", skipped, params)
	}
	if rep.ShallFailed() {
		t.Error("a SHALL check failed")
	}
	if len(rep.CleanupErrors) > 0 {
		t.Errorf("cleanup errors %v", rep.CleanupErrors)
	}
	for _, typ := range testedTypes {
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
			t.Errorf("%d %s resources of the run remain after the cleanup", n, typ)
		}
	}
}

func TestServerIgnoringASearchParameter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ typ, param string }{
		{"Observation", "status"},
		{"Observation", "combo-code-value-quantity"}, // composite
		{"Observation", "_lastUpdated"},
		{"MedicationAdministration", "reason-given"},
		{"MedicationRequest", "intended-dispenser"},
	} {
		t.Run(tc.typ+"/"+tc.param, func(t *testing.T) {
			ts := servertest.Start(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodGet && r.URL.Path == "/"+tc.typ {
						q := r.URL.Query()
						q.Del(tc.param)
						r.URL.RawQuery = q.Encode()
					}
					h.ServeHTTP(w, r)
				})
			})
			rep := run(t, kit.Options{Base: ts.URL, Suites: searchSuites})
			expectFailures(t, rep, []string{"search.param." + tc.param + " [" + tc.typ + "]"}, func(c kit.Check) bool {
				return strings.HasPrefix(c.Reason, "CapabilityStatement says "+tc.typ+" supports the search parameter "+tc.param+"; the server answered") &&
					len(c.Exchanges) > 0
			})
			if !rep.ShallFailed() {
				t.Error("the run did not fail")
			}
			for _, typ := range testedTypes {
				if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
					t.Errorf("%d %s resources of the run remain after the cleanup", n, typ)
				}
			}
		})
	}
}

// TestServerIgnoringChainedParameters drops the chained parameters (the
// keys with a '.') from GET searches: exactly the chain checks fail.
func TestServerIgnoringChainedParameters(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				q := r.URL.Query()
				for k := range q {
					if strings.Contains(k, ".") {
						q.Del(k)
					}
				}
				r.URL.RawQuery = q.Encode()
			}
			h.ServeHTTP(w, r)
		})
	})
	rep := run(t, kit.Options{Base: ts.URL, Suites: searchSuites})
	want := []string{
		"search.chain.based-on [Observation]", "search.chain.derived-from [Observation]",
		"search.chain.part-of [Observation]", "search.chain.request [MedicationAdministration]",
	}
	expectFailures(t, rep, want, func(c kit.Check) bool {
		return c.Level == kit.Should && strings.Contains(c.Reason, "built not to match")
	})
	if rep.ShallFailed() {
		t.Error("a SHALL check failed; chaining is SHOULD")
	}
	for _, typ := range testedTypes {
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
			t.Errorf("%d %s resources of the run remain after the cleanup", n, typ)
		}
	}
}

// TestServerWithoutChaining answers 400, saying chaining is not
// supported, to chained parameters: the chain checks skip with that.
func TestServerWithoutChaining(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k := range r.URL.Query() {
				if r.Method == http.MethodGet && strings.Contains(k, ".") {
					w.Header().Set("Content-Type", "application/fhir+json")
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported","diagnostics":"chained parameters are not supported"}]}`)
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	rep := run(t, kit.Options{Base: ts.URL, Suites: searchSuites})
	if f := failed(rep); len(f) > 0 {
		t.Errorf("failed: %v", f)
	}
	skipped := 0
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.ID, "search.chain.") {
			skipped++
			if c.Status != kit.Skip || !strings.Contains(c.Reason, "does not support chaining") || !strings.Contains(c.Reason, "chained parameters are not supported") {
				t.Errorf("%s: %s %s", c.Name(), c.Status, c.Reason)
			}
		}
	}
	if skipped != 4 {
		t.Errorf("%d search.chain.<param> checks, want 4", skipped)
	}
}

func TestServerWithNonAtomicTransaction(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/" {
				h.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var b struct {
				Type  string `json:"type"`
				Entry []struct {
					Resource json.RawMessage      `json:"resource"`
					Request  struct{ URL string } `json:"request"`
				} `json:"entry"`
			}
			if json.Unmarshal(body, &b) == nil && b.Type == "transaction" && len(b.Entry) == 2 &&
				bytes.Contains(b.Entry[1].Resource, []byte("conformanceKitUnknownElement")) {
				// Not atomic: the first entry is created on its own.
				req := httptest.NewRequest(http.MethodPost, "/"+b.Entry[0].Request.URL, bytes.NewReader(b.Entry[0].Resource))
				req.Header.Set("Content-Type", "application/fhir+json")
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
			h.ServeHTTP(w, r)
		})
	})
	rep := run(t, kit.Options{Base: ts.URL, Suites: searchSuites})
	if got, want := failed(rep), []string{"bundles.transaction.atomic"}; !slices.Equal(got, want) {
		t.Fatalf("failed checks:\n got %v\nwant %v", got, want)
	}
	for _, typ := range testedTypes {
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
			t.Errorf("%d %s resources of the run remain after the cleanup", n, typ)
		}
	}
}

// TestDeclarationsDriveTheSuites rewrites the CapabilityStatement: without
// transaction and batch the bundles suite skips; with _has declared the
// search suite tests it.
func TestDeclarationsDriveTheSuites(t *testing.T) {
	t.Parallel()
	ts := withMetadata(t, func(body []byte) []byte {
		var cs map[string]any
		if err := json.Unmarshal(body, &cs); err != nil {
			t.Error(err)
		}
		rest := cs["rest"].([]any)[0].(map[string]any)
		var kept []any
		for _, i := range rest["interaction"].([]any) {
			if code := i.(map[string]any)["code"]; code != "transaction" && code != "batch" {
				kept = append(kept, i)
			}
		}
		rest["interaction"] = kept
		sp, _ := rest["searchParam"].([]any)
		rest["searchParam"] = append(sp, map[string]any{"name": "_has", "type": "special"})
		out, _ := json.Marshal(cs)
		return out
	})
	rep := run(t, kit.Options{Base: ts.URL, Suites: searchSuites})
	if f := failed(rep); len(f) > 0 {
		t.Errorf("failed: %v", f)
	}
	bundles := 0
	for _, c := range rep.Checks {
		if c.Suite == "bundles" {
			bundles++
			if c.Status != kit.Skip || !strings.HasPrefix(c.Reason, "the CapabilityStatement does not declare the interaction") {
				t.Errorf("%s: %s %s", c.Name(), c.Status, c.Reason)
			}
		}
	}
	if bundles != 8 {
		t.Errorf("%d bundles checks, want 8", bundles)
	}
	for _, typ := range []string{"MedicationRequest", "MedicationAdministration", "Observation"} {
		if !slices.ContainsFunc(rep.Checks, func(c kit.Check) bool { return c.Name() == "search.has ["+typ+"]" && c.Status == kit.Pass }) {
			t.Errorf("search.has [%s] did not pass with _has declared", typ)
		}
	}
}
