// Package kit is a conformance kit: suites of checks that run against any
// FHIR R4 base URL and report, for each check, whether the server behaves as
// the specification and its own CapabilityStatement say.
//
// The kit reads /metadata first and tests what the server claims: what it
// does not claim is skipped with the reason, a claim it does not honour is a
// failure. Everything the kit creates is tagged with the run's id
// (TagSystem) and deleted at the end unless Options.Keep; the kit only ever
// sends requests to the host of the base URL and never follows a URL a
// response names.
package kit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"infusion/fhir"
	"infusion/fhir/model"
	"infusion/fhir/validate"
)

// TagSystem is the system of the meta.tag the kit puts on every resource it
// creates; the code is the run id.
const TagSystem = "https://infusion.example.org/fhir/conformance-run"

// Levels of a check, from the specification's wording.
const (
	Shall  = "SHALL"
	Should = "SHOULD"
	May    = "MAY"
)

// Statuses of a check.
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip"
)

// Suite names.
const (
	SuiteREST   = "rest"
	SuiteErrors = "errors"
)

// AllSuites lists the suites the kit has, in the order they run.
func AllSuites() []string {
	return []string{SuiteREST, SuiteSearch, SuiteBundles, SuiteErrors, SuiteInfusion}
}

// MaxBody is how much of a request or response body an Exchange keeps.
const MaxBody = 4 << 10

// ErrUnreachable is returned (wrapped) by Run when the server cannot be
// reached.
var ErrUnreachable = errors.New("the server cannot be reached")

// ErrNotCapabilityStatement is returned (wrapped) by Run when /metadata
// does not answer 200 with a CapabilityStatement.
var ErrNotCapabilityStatement = errors.New("/metadata is not a CapabilityStatement")

// Options configure a run.
type Options struct {
	Base    string      // the FHIR base URL, e.g. https://fhir.example.org/r4
	Suites  []string    // the suites to run; all when empty
	Header  http.Header // sent with every request, e.g. Authorization
	Timeout time.Duration
	// Keep leaves what the kit created on the server.
	Keep bool
	// Client sends the requests; a client that follows no redirect when nil.
	Client *http.Client
	// Progress, when set, is called with each check as it completes.
	Progress func(Check)
	// TestScripts are TestScript files or directories of them to run (the
	// testscript suite); with no Suites given, only the scripts run.
	TestScripts []string
	// BodyLimit is the largest request body the server accepts, in bytes,
	// when known: errors.oversized-body sends 1 MiB more. When 0, that
	// check runs only against localhost (17 MiB) and is skipped elsewhere.
	BodyLimit int64
}

// Exchange is one request and its response, kept for failed checks.
type Exchange struct {
	Method          string      `json:"method"`
	URL             string      `json:"url"`
	RequestHeaders  http.Header `json:"requestHeaders,omitempty"`
	RequestBody     string      `json:"requestBody,omitempty"`
	Status          int         `json:"status"`
	ResponseHeaders http.Header `json:"responseHeaders,omitempty"`
	ResponseBody    string      `json:"responseBody,omitempty"`
	Error           string      `json:"error,omitempty"`
}

// Check is the result of one check.
type Check struct {
	ID        string     `json:"id"`
	Title     string     `json:"title"`
	Suite     string     `json:"suite"`
	Resource  string     `json:"resource,omitempty"` // the resource type it ran on, if any
	Level     string     `json:"level"`
	Spec      string     `json:"spec"`
	Status    string     `json:"status"`
	Reason    string     `json:"reason,omitempty"`
	Exchanges []Exchange `json:"exchanges,omitempty"` // for failed checks
}

// Name is the check's id, with the resource type it ran on when it has one.
func (c Check) Name() string {
	if c.Resource == "" {
		return c.ID
	}
	return c.ID + " [" + c.Resource + "]"
}

// SuiteSummary counts the results of one suite.
type SuiteSummary struct {
	Suite   string `json:"suite"`
	Passed  int    `json:"passed"`
	Failed  int    `json:"failed"`
	Skipped int    `json:"skipped"`
}

// Report is the result of a run.
type Report struct {
	RunID    string    `json:"runId"`
	Base     string    `json:"base"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Software string    `json:"software,omitempty"` // from the CapabilityStatement
	Checks   []Check   `json:"checks"`
	// Created lists what the kit created ("Type/id"); Kept tells whether
	// it was left on the server.
	Created []string `json:"created,omitempty"`
	Kept    bool     `json:"kept,omitempty"`
	// CleanupErrors lists what could not be deleted at the end.
	CleanupErrors []string `json:"cleanupErrors,omitempty"`
	// TestReports are the TestReport resources of the TestScripts run.
	TestReports []TestReportFile `json:"-"`
}

// Summary counts the checks of each suite, in the order suites ran.
func (r *Report) Summary() []SuiteSummary {
	var out []SuiteSummary
	idx := map[string]int{}
	for _, c := range r.Checks {
		i, ok := idx[c.Suite]
		if !ok {
			i = len(out)
			idx[c.Suite] = i
			out = append(out, SuiteSummary{Suite: c.Suite})
		}
		switch c.Status {
		case Pass:
			out[i].Passed++
		case Fail:
			out[i].Failed++
		case Skip:
			out[i].Skipped++
		}
	}
	return out
}

// ShallFailed reports whether a SHALL check failed: the run fails.
func (r *Report) ShallFailed() bool {
	return slices.ContainsFunc(r.Checks, func(c Check) bool { return c.Status == Fail && c.Level == Shall })
}

// Run runs the suites against opts.Base. The error is for a run that could
// not start: a bad option, a server that cannot be reached
// (ErrUnreachable) or a /metadata that is not a CapabilityStatement
// (ErrNotCapabilityStatement); failed checks are in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	base, err := url.Parse(strings.TrimRight(opts.Base, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("kit: base %q is not an http(s) URL", opts.Base)
	}
	suites := opts.Suites
	if len(suites) == 0 && len(opts.TestScripts) == 0 {
		suites = AllSuites()
	}
	for _, s := range suites {
		if !slices.Contains(AllSuites(), s) {
			return nil, fmt.Errorf("kit: unknown suite %q (the suites are %s)", s, strings.Join(AllSuites(), ", "))
		}
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	m, err := model.Load()
	if err != nil {
		return nil, fmt.Errorf("kit: %w", err)
	}
	v, err := validate.New(m, "CapabilityStatement", "OperationOutcome", "Bundle")
	if err != nil {
		return nil, fmt.Errorf("kit: %w", err)
	}
	runID, err := newRunID()
	if err != nil {
		return nil, err
	}
	r := &runner{
		opts: opts, base: base, client: client, validator: v,
		report: &Report{RunID: runID, Base: base.String(), Started: time.Now().UTC()},
	}
	if err := r.readMetadata(ctx); err != nil {
		return nil, err
	}
	for _, s := range suites {
		switch s {
		case SuiteREST:
			r.restSuite(ctx)
		case SuiteSearch:
			r.searchSuite(ctx)
		case SuiteBundles:
			r.bundlesSuite(ctx)
		case SuiteErrors:
			r.errorsSuite(ctx)
		case SuiteInfusion:
			r.infusionSuite(ctx)
		}
	}
	if len(opts.TestScripts) > 0 {
		r.testScriptSuite(ctx)
	}
	r.cleanup(ctx)
	r.report.Finished = time.Now().UTC()
	return r.report, nil
}

func newRunID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("kit: run id: %w", err)
	}
	return "kit-" + time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:]), nil
}

// runner holds the state of one run.
type runner struct {
	opts      Options
	base      *url.URL
	client    *http.Client
	validator *validate.Validator
	report    *Report
	caps      capabilities
	created   []created
}

type created struct {
	typ, id string
	deleted bool
}

// track records a resource the kit created, for the cleanup.
func (r *runner) track(typ, id string) {
	if typ == "" || id == "" {
		return
	}
	for _, c := range r.created {
		if c.typ == typ && c.id == id {
			return
		}
	}
	r.created = append(r.created, created{typ: typ, id: id})
	r.report.Created = append(r.report.Created, typ+"/"+id)
}

func (r *runner) markDeleted(typ, id string) {
	for i := range r.created {
		if r.created[i].typ == typ && r.created[i].id == id {
			r.created[i].deleted = true
		}
	}
}

// cleanup deletes, newest first, exactly what the kit created.
func (r *runner) cleanup(ctx context.Context) {
	if r.opts.Keep {
		r.report.Kept = len(r.created) > 0
		return
	}
	if ctx.Err() != nil {
		// The run was cancelled: clean up all the same, within a bound.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
	}
	r.sweep(ctx)
	for i := len(r.created) - 1; i >= 0; i-- {
		c := r.created[i]
		if c.deleted {
			continue
		}
		resp := r.do(ctx, nil, http.MethodDelete, c.typ+"/"+url.PathEscape(c.id), nil, nil)
		if resp.err != nil || (resp.status != http.StatusOK && resp.status != http.StatusNoContent && resp.status != http.StatusAccepted) {
			msg := fmt.Sprintf("%s/%s: DELETE answered %d", c.typ, c.id, resp.status)
			if resp.err != nil {
				msg = fmt.Sprintf("%s/%s: %v", c.typ, c.id, resp.err)
			}
			r.report.CleanupErrors = append(r.report.CleanupErrors, msg)
		}
	}
}

// sweep finds, by a search on the run's tag, what the kit created but
// could not track (a create answered without an id the kit could trust),
// and adds to the cleanup only the resources whose body carries the tag.
func (r *runner) sweep(ctx context.Context) {
	for _, cr := range r.caps.resources() {
		if !cr.supports("search-type") || !cr.supports("create") {
			continue
		}
		q := url.Values{"_tag": {TagSystem + "|" + r.report.RunID}, "_count": {"100"}}
		// Every page, following next links only on the base (at most 1000).
		seen := map[string]bool{}
		for path := cr.Type + "?" + q.Encode(); path != "" && !seen[path] && len(seen) < 1000; {
			seen[path] = true
			path = r.sweepPage(ctx, cr.Type, path)
		}
	}
}

// sweepPage tracks the tagged resources of one page of the sweep's search
// and returns the path of the next page on the base, or "".
func (r *runner) sweepPage(ctx context.Context, typ, path string) string {
	resp := r.do(ctx, nil, http.MethodGet, path, nil, nil)
	if resp.status != http.StatusOK || resp.res == nil || resp.res.Type != "Bundle" {
		return ""
	}
	var b struct {
		Link []struct {
			Relation string `json:"relation"`
			URL      string `json:"url"`
		} `json:"link"`
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
				Meta         struct {
					Tag []struct{ System, Code string } `json:"tag"`
				} `json:"meta"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if json.Unmarshal(resp.body, &b) != nil {
		return ""
	}
	for _, e := range b.Entry {
		res := e.Resource
		if res.ResourceType != typ || !slices.ContainsFunc(res.Meta.Tag, func(t struct{ System, Code string }) bool {
			return t.System == TagSystem && t.Code == r.report.RunID
		}) {
			continue
		}
		r.track(res.ResourceType, res.ID)
	}
	for _, l := range b.Link {
		if l.Relation == "next" {
			return r.onBase(l.URL)
		}
	}
	return ""
}

// response is what the kit keeps of a response.
type response struct {
	status int
	header http.Header
	body   []byte
	res    *fhir.Resource // the body as a FHIR resource, when it is one
	err    error
	ex     Exchange // as recorded
}

// saw records on c a response another check received, when c judges it.
func (c *checkRun) saw(resp response) {
	if resp.ex.Method != "" {
		c.exchanges = append(c.exchanges, resp.ex)
	}
}

// do sends a request to base/path (path may carry a query) and records
// the exchange on c when c is not nil. A FHIR JSON body in the response is
// validated against R4; problems are noted on c.
func (r *runner) do(ctx context.Context, c *checkRun, method, path string, header http.Header, body []byte) (out response) {
	u := r.base.String() + "/" + strings.TrimPrefix(path, "/")
	ex := Exchange{Method: method, URL: u, RequestBody: truncate(body)}
	defer func() {
		out.ex = ex
		if c != nil {
			c.exchanges = append(c.exchanges, ex)
		}
	}()
	target, err := url.Parse(u)
	if err != nil || target.Host != r.base.Host {
		out.err = fmt.Errorf("kit: refusing to send a request outside %s: %s", r.base.Host, u)
		ex.Error = out.err.Error()
		return out
	}
	if r.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		out.err = fmt.Errorf("kit: %s %s: %w", method, u, err)
		ex.Error = out.err.Error()
		return out
	}
	for k, vs := range r.opts.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/fhir+json")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	ex.RequestHeaders = redact(req.Header)
	resp, err := r.client.Do(req)
	if err != nil {
		out.err = fmt.Errorf("kit: %s %s: %w", method, u, err)
		ex.Error = out.err.Error()
		return out
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		out.err = fmt.Errorf("kit: %s %s: reading the response: %w", method, u, err)
		ex.Error = out.err.Error()
	}
	out.status, out.header, out.body = resp.StatusCode, resp.Header, data
	ex.Status, ex.ResponseHeaders, ex.ResponseBody = resp.StatusCode, redact(resp.Header), truncate(data)
	if isJSON(resp.Header.Get("Content-Type")) && len(bytes.TrimSpace(data)) > 0 {
		res, err := fhir.Parse(data)
		switch {
		case err != nil:
			if c != nil {
				c.invalid = append(c.invalid, fmt.Sprintf("the body of %s %s is not a FHIR resource: %v", method, u, err))
			}
		default:
			out.res = res
			if msg := r.validateBody(res); msg != "" && c != nil {
				c.invalid = append(c.invalid, fmt.Sprintf("the %s in the body of %s %s is not valid R4: %s", res.Type, method, u, msg))
			}
		}
	}
	return out
}

// validateBody returns what is wrong with a resource the server sent, or "".
func (r *runner) validateBody(res *fhir.Resource) string {
	issues, err := r.validator.Validate(res)
	if err != nil {
		return err.Error()
	}
	var msgs []string
	for _, is := range issues {
		if is.Severity == fhir.SeverityError || is.Severity == fhir.SeverityFatal {
			msgs = append(msgs, strings.TrimSpace(strings.Join(is.Expression, ",")+" "+is.Diagnostics))
		}
		if len(msgs) == 3 {
			break
		}
	}
	return strings.Join(msgs, "; ")
}

func isJSON(contentType string) bool {
	ct := strings.ToLower(contentType)
	return strings.Contains(ct, "json")
}

func truncate(b []byte) string {
	if len(b) <= MaxBody {
		return string(b)
	}
	return string(b[:MaxBody]) + "…(truncated)"
}

// redact copies h without credentials.
func redact(h http.Header) http.Header {
	out := h.Clone()
	for _, k := range []string{"Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization"} {
		if out.Get(k) != "" {
			out.Set(k, "[redacted]")
		}
	}
	return out
}

// checkRun is a check being run.
type checkRun struct {
	r         *runner
	check     Check
	exchanges []Exchange
	invalid   []string // invalid response bodies seen
	done      bool
}

// begin starts a check.
func (r *runner) begin(id, title, suite, resource, level, spec string) *checkRun {
	return &checkRun{r: r, check: Check{ID: id, Title: title, Suite: suite, Resource: resource, Level: level, Spec: spec}}
}

func (c *checkRun) finish(status, reason string) {
	if c.done {
		return
	}
	c.done = true
	if status == Pass && len(c.invalid) > 0 {
		status, reason = Fail, strings.Join(c.invalid, "; ")
	}
	c.check.Status, c.check.Reason = status, reason
	if status == Fail {
		c.check.Exchanges = c.exchanges
	}
	c.r.report.Checks = append(c.r.report.Checks, c.check)
	if c.r.opts.Progress != nil {
		c.r.opts.Progress(c.check)
	}
}

// pass ends the check as passed (failed if a response body was invalid).
func (c *checkRun) pass() { c.finish(Pass, "") }

// fail ends the check as failed.
func (c *checkRun) fail(format string, args ...any) { c.finish(Fail, fmt.Sprintf(format, args...)) }

// skip ends the check as skipped.
func (c *checkRun) skip(format string, args ...any) { c.finish(Skip, fmt.Sprintf(format, args...)) }

// do sends a request recorded on the check.
func (c *checkRun) do(ctx context.Context, method, path string, header http.Header, body []byte) response {
	return c.r.do(ctx, c, method, path, header, body)
}

// readMetadata reads the CapabilityStatement.
func (r *runner) readMetadata(ctx context.Context) error {
	resp := r.do(ctx, nil, http.MethodGet, "metadata", nil, nil)
	if resp.err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, resp.err)
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("%w: GET %s/metadata answered %d", ErrNotCapabilityStatement, r.base, resp.status)
	}
	if resp.res == nil || resp.res.Type != "CapabilityStatement" {
		return fmt.Errorf("%w: GET %s/metadata answered %.200q", ErrNotCapabilityStatement, r.base, resp.body)
	}
	caps, err := parseCapabilities(resp.body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotCapabilityStatement, err)
	}
	r.caps = caps
	r.report.Software = strings.TrimSpace(caps.Software.Name + " " + caps.Software.Version)
	r.metadataCheck(resp)
	return nil
}

// capabilities is what the kit reads of a CapabilityStatement.
type capabilities struct {
	ResourceType string   `json:"resourceType"`
	FHIRVersion  string   `json:"fhirVersion"`
	Format       []string `json:"format"`
	Software     struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"software"`
	Rest []struct {
		Mode     string           `json:"mode"`
		Resource []capResource    `json:"resource"`
		Inter    []capInteraction `json:"interaction"`
		// SearchParam lists the parameters declared for all types.
		SearchParam []struct {
			Name          string `json:"name"`
			Type          string `json:"type"`
			Documentation string `json:"documentation"`
		} `json:"searchParam"`
	} `json:"rest"`
}

type capInteraction struct {
	Code string `json:"code"`
}

type capResource struct {
	Type        string           `json:"type"`
	Interaction []capInteraction `json:"interaction"`
	Versioning  string           `json:"versioning"`
	SearchParam []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		// Documentation is, on some servers (this one), the FHIRPath
		// expression; the search suite reads it.
		Documentation string `json:"documentation"`
	} `json:"searchParam"`
	SearchInclude    []string `json:"searchInclude"`
	SearchRevInclude []string `json:"searchRevInclude"`
	// Conditional operations and operations, for rest_more.go.
	ConditionalRead   string `json:"conditionalRead"`
	ConditionalCreate bool   `json:"conditionalCreate"`
	ConditionalUpdate bool   `json:"conditionalUpdate"`
	ConditionalDelete string `json:"conditionalDelete"`
	Operation         []struct {
		Name       string `json:"name"`
		Definition string `json:"definition"`
	} `json:"operation"`
}

func parseCapabilities(data []byte) (capabilities, error) {
	var c capabilities
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("reading the CapabilityStatement: %w", err)
	}
	return c, nil
}

// resources returns the resource types the server declares in server mode.
func (c capabilities) resources() []capResource {
	var out []capResource
	for _, rest := range c.Rest {
		if rest.Mode == "server" || rest.Mode == "" {
			out = append(out, rest.Resource...)
		}
	}
	return out
}

// supports reports whether the resource declares an interaction.
func (cr capResource) supports(code string) bool {
	return slices.ContainsFunc(cr.Interaction, func(i capInteraction) bool { return i.Code == code })
}

// metadataCheck checks the CapabilityStatement itself.
func (r *runner) metadataCheck(resp response) {
	if !r.selected(SuiteREST) {
		return
	}
	c := r.begin("rest.metadata", "GET [base]/metadata returns a valid R4 CapabilityStatement", SuiteREST, "", Shall, specHTTP+"#capabilities")
	if msg := r.validateBody(resp.res); msg != "" {
		c.fail("the CapabilityStatement is not valid R4: %s", msg)
		return
	}
	if !strings.HasPrefix(r.caps.FHIRVersion, "4.0") {
		c.fail("fhirVersion is %q, not 4.0.x", r.caps.FHIRVersion)
		return
	}
	c.pass()
}

func (r *runner) selected(suite string) bool {
	return len(r.opts.Suites) == 0 || slices.Contains(r.opts.Suites, suite)
}
