package kit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"infusion/conformance/kit"
	"infusion/server/servertest"
)

func run(t *testing.T, opts kit.Options) *kit.Report {
	t.Helper()
	rep, err := kit.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// failed returns the names of the failed checks, sorted.
func failed(rep *kit.Report) []string {
	var out []string
	for _, c := range rep.Checks {
		if c.Status == kit.Fail {
			out = append(out, c.Name())
		}
	}
	slices.Sort(out)
	return out
}

// expectFailures checks that exactly the checks want failed (by name, in
// order), each with what ok asks of it (its reason, its exchanges…).
func expectFailures(t *testing.T, rep *kit.Report, want []string, ok func(kit.Check) bool) {
	t.Helper()
	if got := failed(rep); !slices.Equal(got, want) {
		t.Errorf("failed checks:\n got %v\nwant %v", got, want)
	}
	for _, c := range rep.Checks {
		if c.Status == kit.Fail && !ok(c) {
			t.Errorf("%s (%s): %s (%d exchanges)", c.Name(), c.Level, c.Reason, len(c.Exchanges))
		}
	}
}

// tagged counts the resources of typ on the server that carry the run's tag.
func tagged(t *testing.T, base, typ, runID string) int {
	t.Helper()
	q := url.Values{"_tag": {kit.TagSystem + "|" + runID}, "_summary": {"count"}}
	resp, err := http.Get(base + "/" + typ + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct {
		Total *int `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || b.Total == nil {
		t.Fatalf("search %s by tag: %v (status %d)", typ, err, resp.StatusCode)
	}
	return *b.Total
}

var testedTypes = []string{"Observation", "MedicationRequest", "MedicationAdministration"}

func TestAgainstThisServer(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	var progress []string
	rep := run(t, kit.Options{Base: ts.URL, Progress: func(c kit.Check) { progress = append(progress, c.Name()) }})
	if f := failed(rep); len(f) > 0 {
		for _, c := range rep.Checks {
			if c.Status == kit.Fail {
				t.Errorf("%s failed: %s", c.Name(), c.Reason)
			}
		}
	}
	if rep.ShallFailed() {
		t.Error("a SHALL check failed against this server")
	}
	if len(progress) != len(rep.Checks) {
		t.Errorf("progress saw %d checks, the report has %d", len(progress), len(rep.Checks))
	}
	passed := 0
	for _, c := range rep.Checks {
		if c.Status == kit.Skip && c.Reason == "" {
			t.Errorf("%s skipped without a reason", c.Name())
		}
		if c.Status == kit.Pass {
			passed++
		}
		if c.ID == "" || c.Title == "" || c.Suite == "" || c.Level == "" || !strings.HasPrefix(c.Spec, "https://hl7.org/fhir/R4/") {
			t.Errorf("check %+v lacks an id, title, suite, level or spec", c)
		}
	}
	for _, typ := range testedTypes {
		for _, id := range []string{"rest.create.location", "rest.update.if-match-stale", "rest.delete.read-410"} {
			if !slices.ContainsFunc(rep.Checks, func(c kit.Check) bool { return c.ID == id && c.Resource == typ && c.Status == kit.Pass }) {
				t.Errorf("%s [%s] did not pass", id, typ)
			}
		}
	}
	if passed < 60 {
		t.Errorf("only %d checks passed", passed)
	}
	if len(rep.Created) == 0 || len(rep.CleanupErrors) > 0 {
		t.Errorf("created %v, cleanup errors %v", rep.Created, rep.CleanupErrors)
	}
	for _, typ := range testedTypes {
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
			t.Errorf("%d %s resources of the run remain after the cleanup", n, typ)
		}
	}
}

func TestKeep(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	rep := run(t, kit.Options{Base: ts.URL, Suites: []string{"rest"}, Keep: true})
	if !rep.Kept {
		t.Error("the report does not say the resources were kept")
	}
	for _, typ := range testedTypes {
		// create and Prefer: return=minimal remain, and those of
		// if-modified-since, conditional create and update, and patch; the
		// ones deleted by rest.delete.status and .conditional do not.
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 6 {
			t.Errorf("%d %s resources of the run remain with -keep, want 6", n, typ)
		}
	}
	for _, c := range rep.Checks {
		if c.Suite != "rest" {
			t.Errorf("%s ran though only rest was asked for", c.Name())
		}
	}
}

// dropHeader is a ResponseWriter that removes a header before it is sent.
type dropHeader struct {
	http.ResponseWriter
	name string
}

func (w *dropHeader) WriteHeader(code int) {
	w.Header().Del(w.name)
	w.ResponseWriter.WriteHeader(code)
}

func (w *dropHeader) Write(b []byte) (int, error) {
	w.Header().Del(w.name)
	return w.ResponseWriter.Write(b)
}

func (w *dropHeader) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestServerWithoutETag(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(&dropHeader{ResponseWriter: w, name: "ETag"}, r)
		})
	})
	rep := run(t, kit.Options{Base: ts.URL})
	var want []string
	for _, typ := range testedTypes {
		for _, id := range []string{"rest.create.etag", "rest.read.etag", "rest.update.etag"} {
			want = append(want, id+" ["+typ+"]")
		}
	}
	slices.Sort(want)
	if got := failed(rep); !slices.Equal(got, want) {
		t.Errorf("failed checks:\n got %v\nwant %v", got, want)
	}
	if !rep.ShallFailed() {
		t.Error("rest.update.etag is a SHALL check: the run must fail")
	}
	for _, c := range rep.Checks {
		if c.Status == kit.Fail && len(c.Exchanges) == 0 {
			t.Errorf("%s failed without the exchanges", c.Name())
		}
	}
}

// bodyless is a ResponseWriter that swallows the body of every response
// whose status drop selects, after drop has edited its headers.
type bodyless struct {
	http.ResponseWriter
	drop     func(code int, h http.Header) bool
	dropping bool
}

func (w *bodyless) WriteHeader(code int) {
	w.dropping = w.drop(code, w.Header())
	w.ResponseWriter.WriteHeader(code)
}

func (w *bodyless) Write(b []byte) (int, error) {
	if w.dropping {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// noOutcome answers errors with an empty text body: no OperationOutcome.
func noOutcome(code int, h http.Header) bool {
	if code < 400 {
		return false
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Del("Content-Length")
	return true
}

func TestServerWithoutOperationOutcome(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(&bodyless{ResponseWriter: w, drop: noOutcome}, r)
		})
	})
	rep := run(t, kit.Options{Base: ts.URL})
	got := failed(rep)
	var want []string
	for _, c := range rep.Checks {
		if c.Suite == "errors" && strings.HasSuffix(c.ID, ".outcome") {
			want = append(want, c.Name())
		}
	}
	slices.Sort(want)
	if len(want) != 8 || !slices.Equal(got, want) {
		t.Errorf("failed checks:\n got %v\nwant %v", got, want)
	}
}

func TestNotAFHIRServer(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write([]byte(`{"resourceType":"Patient","id":"x"}`))
	}))
	defer ts.Close()
	if _, err := kit.Run(context.Background(), kit.Options{Base: ts.URL}); !errors.Is(err, kit.ErrNotCapabilityStatement) {
		t.Errorf("err = %v, want ErrNotCapabilityStatement", err)
	}
	ts.Close()
	if _, err := kit.Run(context.Background(), kit.Options{Base: ts.URL}); !errors.Is(err, kit.ErrUnreachable) {
		t.Errorf("err = %v, want ErrUnreachable", err)
	}
	if _, err := kit.Run(context.Background(), kit.Options{Base: "http://localhost", Suites: []string{"nope"}}); err == nil {
		t.Error("an unknown suite was accepted")
	}
}

// hostRecorder is a transport that records the host of every request.
type hostRecorder struct {
	mu    sync.Mutex
	hosts map[string]bool
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hosts[r.URL.Host] = true
	h.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func TestLocationElsewhereIsNotFollowed(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(&elsewhere{ResponseWriter: w}, r)
		})
	})
	rec := &hostRecorder{hosts: map[string]bool{}}
	client := &http.Client{Transport: rec, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	rep := run(t, kit.Options{Base: ts.URL, Client: client})
	u, _ := url.Parse(ts.URL)
	if len(rec.hosts) != 1 || !rec.hosts[u.Host] {
		t.Errorf("requests went to %v", rec.hosts)
	}
	for _, c := range rep.Checks {
		if c.ID == "rest.create.location" && slices.Contains(testedTypes, c.Resource) && c.Status != kit.Fail {
			t.Errorf("%s: %s", c.Name(), c.Status)
		}
	}
	for _, typ := range testedTypes {
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
			t.Errorf("%d %s resources of the run remain after the cleanup", n, typ)
		}
	}
}

// elsewhere points Location headers at another host.
type elsewhere struct{ http.ResponseWriter }

func (w *elsewhere) WriteHeader(code int) {
	if loc := w.Header().Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			u.Host = "elsewhere.invalid"
			w.Header().Set("Location", u.String())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func TestReports(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(&dropHeader{ResponseWriter: w, name: "ETag"}, r)
		})
	})
	rep := run(t, kit.Options{Base: ts.URL})
	var buf bytes.Buffer
	if err := rep.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("the JUnit report is not XML: %v", err)
	}
	sums := rep.Summary()
	if len(doc.Suites) != len(sums) {
		t.Fatalf("%d testsuites, want %d", len(doc.Suites), len(sums))
	}
	total := 0
	for i, s := range sums {
		d := doc.Suites[i]
		failures, skipped := 0, 0
		for _, c := range d.Cases {
			if c.Failure != nil {
				failures++
			}
			if c.Skipped != nil {
				skipped++
			}
		}
		if d.Name != s.Suite || d.Failures != s.Failed || d.Skipped != s.Skipped || d.Tests != s.Passed+s.Failed+s.Skipped ||
			failures != s.Failed || skipped != s.Skipped || len(d.Cases) != d.Tests {
			t.Errorf("testsuite %+v does not match %+v", d, s)
		}
		total += d.Tests
	}
	if doc.Tests != total || doc.Tests != len(rep.Checks) || doc.Failures != 9 {
		t.Errorf("testsuites: tests=%d failures=%d; the report has %d checks", doc.Tests, doc.Failures, len(rep.Checks))
	}

	buf.Reset()
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var j struct {
		RunID, Base, Started string
		Checks               []kit.Check
	}
	if err := json.Unmarshal(buf.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if j.RunID != rep.RunID || j.Base != ts.URL || j.Started == "" || len(j.Checks) != len(rep.Checks) {
		t.Errorf("JSON report: run %q base %q started %q, %d checks", j.RunID, j.Base, j.Started, len(j.Checks))
	}
	for _, c := range j.Checks {
		if c.Status == kit.Fail && (len(c.Exchanges) == 0 || c.Exchanges[0].Method == "" || c.Exchanges[0].Status == 0) {
			t.Errorf("%s: failed without its exchanges", c.Name())
		}
	}
}

func TestInvalidBodyFailsTheCheck(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
			if r.Method != http.MethodGet || len(parts) != 2 || parts[0] != "Observation" {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if rec.Code == http.StatusOK {
				body = bytes.Replace(body, []byte(`{"resourceType":"Observation",`), []byte(`{"resourceType":"Observation","bogus":1,`), 1)
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	})
	// The rest and errors suites: the infusion suite's Observation reads
	// fail the same way (infusion_test.go covers that suite).
	rep := run(t, kit.Options{Base: ts.URL, Suites: []string{"rest", "errors"}})
	// rest.read.if-modified-since and rest.update.conditional read back too.
	want := []string{"rest.read.format-json [Observation]", "rest.read.if-modified-since [Observation]", "rest.read.status [Observation]", "rest.update.conditional [Observation]"}
	expectFailures(t, rep, want, func(c kit.Check) bool { return strings.Contains(c.Reason, "not valid R4") })
}

func TestClaimNotHonoured(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/Observation/") {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	rep := run(t, kit.Options{Base: ts.URL})
	expectFailures(t, rep, []string{"rest.delete.status [Observation]"}, func(c kit.Check) bool {
		return strings.HasPrefix(c.Reason, "CapabilityStatement says Observation supports delete; the server answered 405")
	})
	for _, c := range rep.Checks {
		if c.Resource == "Observation" && strings.HasPrefix(c.ID, "rest.delete.read") && c.Status != kit.Skip {
			t.Errorf("%s ran after the delete failed", c.Name())
		}
	}
	if !rep.ShallFailed() || len(rep.CleanupErrors) == 0 {
		t.Errorf("ShallFailed %v, cleanup errors %v", rep.ShallFailed(), rep.CleanupErrors)
	}
}

// withMetadata serves this project's server with its CapabilityStatement
// passed through edit.
func withMetadata(t *testing.T, edit func([]byte) []byte) *httptest.Server {
	t.Helper()
	return servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/metadata" {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(rec.Code)
			w.Write(edit(rec.Body.Bytes()))
		})
	})
}
