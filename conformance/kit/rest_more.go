package kit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"infusion/fhir"
)

// specValidate is the page of the $validate operation.
const specValidate = "https://hl7.org/fhir/R4/resource-operation-validate.html"

// moreDefs lists the checks of the rest suite on conditional reads and
// operations, patch and $validate, in order; they run after restDefs.
func moreDefs() []restDef {
	return []restDef{
		{"rest.read.if-modified-since", "read with If-Modified-Since not before the resource's last update answers 304 Not Modified", May, "#cread"},
		{"rest.create.conditional", "a conditional create (If-None-Exist) that matches one resource answers 200 (or 412) and creates nothing", Shall, "#ccreate"},
		{"rest.update.conditional", "a conditional update (PUT [type]?identifier=…) that matches one resource updates that resource", Shall, "#cond-update"},
		{"rest.delete.conditional", "a conditional delete (DELETE [type]?identifier=…) deletes the one resource it matches", Shall, "#cdelete"},
		{"rest.patch.json-patch", "patch with a JSON Patch (application/json-patch+json) answers 200 and applies it (or 415 when the server takes another patch format)", Shall, "#patch"},
		{"rest.validate.valid", "POST [type]/$validate of a valid resource answers 200 with an OperationOutcome without errors", Shall, ""},
		{"rest.validate.invalid", "POST [type]/$validate of an invalid resource answers 4xx, or 200 with an OperationOutcome that has an error", Shall, ""},
	}
}

// moreBegin starts a check of moreDefs.
func (t *typeRun) moreBegin(id string) *checkRun {
	for _, d := range moreDefs() {
		if d.id == id {
			spec := specHTTP + d.anchor
			if d.anchor == "" {
				spec = specValidate
			}
			return t.r.begin(d.id, d.title, SuiteREST, t.cr.Type, d.level, spec)
		}
	}
	panic("kit: no check " + id)
}

// runMore runs the checks of moreDefs on the type; when create is not
// declared (or gave no id), they are skipped with the reason.
func (t *typeRun) runMore(ctx context.Context) {
	typ := t.cr.Type
	if !t.cr.supports("create") {
		for _, d := range moreDefs() {
			t.moreBegin(d.id).skip("the CapabilityStatement does not declare create for %s, and the kit tests only resources it creates", typ)
		}
		return
	}
	t.ifModifiedSince(ctx)
	t.conditionalCreate(ctx)
	t.conditionalUpdate(ctx)
	t.conditionalDelete(ctx)
	t.jsonPatch(ctx)
	t.validateOp(ctx)
}

// moreIdent is the identifier of a resource of these checks: unique to the
// run, the type and the label.
func (t *typeRun) moreIdent(label string) (system, value string) {
	return IDSystem, t.r.report.RunID + "-" + t.cr.Type + "-" + label
}

// createWith creates the type's sample with an identifier and extra
// elements; it returns the id ("" when none) and the response.
func (t *typeRun) createWith(ctx context.Context, c *checkRun, label string, header http.Header, extra map[string]any) (string, response) {
	sys, val := t.moreIdent(label)
	if extra == nil {
		extra = map[string]any{}
	}
	extra["identifier"] = []any{map[string]any{"system": sys, "value": val}}
	body, _ := t.r.sample(t.cr.Type, "", extra)
	resp := c.do(ctx, http.MethodPost, t.cr.Type, header, body)
	id := createdIDOf(t.r, t.cr.Type, resp)
	t.r.track(t.cr.Type, id)
	return id, resp
}

// byIdentifier searches the type by the identifier of label and returns
// the ids found, or a problem.
func (t *typeRun) byIdentifier(ctx context.Context, c *checkRun, label string) ([]string, string) {
	sys, val := t.moreIdent(label)
	b, _, problem := c.search(ctx, http.MethodGet, t.cr.Type+"?"+url.Values{"identifier": {sys + "|" + val}}.Encode(), nil)
	if problem != "" {
		return nil, problem
	}
	var ids []string
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == t.cr.Type && (e.Search.Mode == "" || e.Search.Mode == "match") {
			ids = append(ids, fmt.Sprint(e.Resource["id"]))
		}
	}
	return ids, ""
}

// searchableByIdentifier reports whether the kit can check by a search on
// identifier what a condition matches, and why not.
func (t *typeRun) searchableByIdentifier() (bool, string) {
	if !t.cr.supports("search-type") || !t.r.declaresParam(t.cr.Type, "identifier") {
		return false, fmt.Sprintf("the CapabilityStatement declares no identifier search for %s, and the kit sends a conditional update or delete only after a search shows that the condition matches its own resource alone", t.cr.Type)
	}
	return true, ""
}

// ifModifiedSince reads a resource with If-Modified-Since set to its last
// update (rounded up to the second, and not in the future).
func (t *typeRun) ifModifiedSince(ctx context.Context) {
	typ := t.cr.Type
	c := t.moreBegin("rest.read.if-modified-since")
	if !t.cr.supports("read") {
		c.skip("the CapabilityStatement does not declare read for %s", typ)
		return
	}
	id := t.createFor(ctx, c, "ims", "read")
	if id == "" {
		return
	}
	path := typ + "/" + url.PathEscape(id)
	resp := c.do(ctx, http.MethodGet, path, nil, nil)
	if resp.status != http.StatusOK || resp.res == nil {
		c.fail("GET %s answered %d", path, resp.status)
		return
	}
	var since time.Time
	if lm, err := http.ParseTime(resp.header.Get("Last-Modified")); err == nil {
		since = lm
	}
	meta, _ := resp.res.Tree["meta"].(map[string]any)
	if s, _ := meta["lastUpdated"].(string); s != "" {
		if lu, err := time.Parse(time.RFC3339Nano, s); err == nil && lu.After(since) {
			since = lu
		}
	}
	if since.IsZero() {
		c.fail("GET %s answered with neither Last-Modified nor meta.lastUpdated", path)
		return
	}
	if s := since.Truncate(time.Second); !s.Equal(since) {
		since = s.Add(time.Second) // HTTP dates have whole seconds
	}
	// A date in the future is to be ignored (RFC 9110): wait until it is not.
	if wait := time.Until(since); wait > 0 && wait <= 2*time.Second {
		select {
		case <-time.After(wait + 50*time.Millisecond):
		case <-ctx.Done():
		}
	}
	h := since.UTC().Format(http.TimeFormat)
	resp = c.do(ctx, http.MethodGet, path, http.Header{"If-Modified-Since": {h}}, nil)
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
	case resp.status == http.StatusNotModified:
		c.pass()
	case t.declaresConditionalRead("modified-since"):
		c.fail("CapabilityStatement says %s supports conditionalRead %s; the server answered %d to GET %s with If-Modified-Since: %s", typ, t.cr.ConditionalRead, resp.status, path, h)
	default:
		c.fail("GET %s with If-Modified-Since: %s answered %d, not 304 (R4 lets a server ignore it)", path, h, resp.status)
	}
}

// declaresConditionalRead reports whether the type's conditionalRead
// covers kind (modified-since or not-match).
func (t *typeRun) declaresConditionalRead(kind string) bool {
	return t.cr.ConditionalRead == kind || t.cr.ConditionalRead == "full-support"
}

// conditionalCreate creates a resource with If-None-Exist on its own
// identifier twice: the second must create nothing.
func (t *typeRun) conditionalCreate(ctx context.Context) {
	typ := t.cr.Type
	c := t.moreBegin("rest.create.conditional")
	if !t.cr.ConditionalCreate {
		c.skip("the CapabilityStatement does not declare conditionalCreate for %s", typ)
		return
	}
	sys, val := t.moreIdent("ccreate")
	cond := http.Header{"If-None-Exist": {url.Values{"identifier": {sys + "|" + val}}.Encode()}}
	first, resp := t.createWith(ctx, c, "ccreate", cond, nil)
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
		return
	case resp.status != http.StatusCreated || first == "":
		c.fail("CapabilityStatement says %s supports conditionalCreate; the first create with If-None-Exist (no match) answered %d, not 201 with an id", typ, resp.status)
		return
	}
	second, resp := t.createWith(ctx, c, "ccreate", cond, nil)
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
		return
	case second != "" && second != first:
		c.fail("CapabilityStatement says %s supports conditionalCreate; the server answered %d to a create with If-None-Exist: %s matching %s/%s and created %s/%s", typ, resp.status, cond.Get("If-None-Exist"), typ, first, typ, second)
		return
	case resp.status != http.StatusOK && resp.status != http.StatusPreconditionFailed:
		c.fail("CapabilityStatement says %s supports conditionalCreate; the server answered %d, not 200, to a create with If-None-Exist: %s matching %s/%s", typ, resp.status, cond.Get("If-None-Exist"), typ, first)
		return
	}
	if ok, _ := t.searchableByIdentifier(); ok {
		ids, problem := t.byIdentifier(ctx, c, "ccreate")
		switch {
		case problem != "":
			c.fail("searching by identifier after the conditional create: %s", problem)
			return
		case len(ids) != 1:
			for _, id := range ids {
				t.r.track(typ, id)
			}
			c.fail("CapabilityStatement says %s supports conditionalCreate; after two creates with If-None-Exist: %s the server holds %d resources with that identifier (%s)", typ, cond.Get("If-None-Exist"), len(ids), strings.Join(ids, ", "))
			return
		}
	}
	c.pass()
}

// conditionalUpdate updates, by PUT [type]?identifier=…, the one resource
// of the run with that identifier.
func (t *typeRun) conditionalUpdate(ctx context.Context) {
	typ := t.cr.Type
	c := t.moreBegin("rest.update.conditional")
	if !t.cr.ConditionalUpdate {
		c.skip("the CapabilityStatement does not declare conditionalUpdate for %s", typ)
		return
	}
	id, ok := t.conditionalTarget(ctx, c, "cupdate", "update")
	if !ok {
		return
	}
	sys, val := t.moreIdent("cupdate")
	body, _ := t.r.sample(typ, "", map[string]any{"language": "en", "identifier": []any{map[string]any{"system": sys, "value": val}}})
	path := typ + "?" + url.Values{"identifier": {sys + "|" + val}}.Encode()
	resp := c.do(ctx, http.MethodPut, path, nil, body)
	got := createdIDOf(t.r, typ, resp)
	t.r.track(typ, got)
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
		return
	case resp.status != http.StatusOK:
		c.fail("CapabilityStatement says %s supports conditionalUpdate; the server answered %d, not 200, to PUT %s matching %s/%s", typ, resp.status, path, typ, id)
		return
	case got != "" && got != id:
		c.fail("CapabilityStatement says %s supports conditionalUpdate; PUT %s matching %s/%s wrote %s/%s", typ, path, typ, id, typ, got)
		return
	}
	if t.cr.supports("read") {
		if lang, problem := t.readLanguage(ctx, c, id); problem != "" {
			c.fail("%s", problem)
			return
		} else if lang != "en" {
			c.fail("PUT %s answered 200, but %s/%s read back has language %q, not the \"en\" sent", path, typ, id, lang)
			return
		}
	}
	c.pass()
}

// readLanguage reads the resource and returns its language.
func (t *typeRun) readLanguage(ctx context.Context, c *checkRun, id string) (string, string) {
	path := t.cr.Type + "/" + url.PathEscape(id)
	resp := c.do(ctx, http.MethodGet, path, nil, nil)
	if resp.err != nil {
		return "", resp.err.Error()
	}
	if resp.status != http.StatusOK || resp.res == nil || resp.res.Type != t.cr.Type {
		return "", fmt.Sprintf("GET %s answered %d", path, resp.status)
	}
	lang, _ := resp.res.Tree["language"].(string)
	return lang, ""
}

// conditionalDelete deletes, by DELETE [type]?identifier=…, the one
// resource of the run with that identifier, after a search shows it is the
// only one the condition matches.
func (t *typeRun) conditionalDelete(ctx context.Context) {
	typ := t.cr.Type
	c := t.moreBegin("rest.delete.conditional")
	if cd := t.cr.ConditionalDelete; cd != "single" && cd != "multiple" {
		c.skip("the CapabilityStatement does not declare conditionalDelete single or multiple for %s (it says %q)", typ, cd)
		return
	}
	id, ok := t.conditionalTarget(ctx, c, "cdelete", "delete")
	if !ok {
		return
	}
	sys, val := t.moreIdent("cdelete")
	path := typ + "?" + url.Values{"identifier": {sys + "|" + val}}.Encode()
	resp := c.do(ctx, http.MethodDelete, path, nil, nil)
	switch resp.status {
	case http.StatusOK, http.StatusAccepted, http.StatusNoContent:
	default:
		if resp.err != nil {
			c.fail("%v", resp.err)
		} else {
			c.fail("CapabilityStatement says %s supports conditionalDelete %s; the server answered %d to DELETE %s matching %s/%s", typ, t.cr.ConditionalDelete, resp.status, path, typ, id)
		}
		return
	}
	if t.cr.supports("read") {
		p := typ + "/" + url.PathEscape(id)
		resp = c.do(ctx, http.MethodGet, p, nil, nil)
		if resp.status != http.StatusNotFound && resp.status != http.StatusGone {
			c.fail("CapabilityStatement says %s supports conditionalDelete %s; DELETE %s answered success, but GET %s then answered %d, not 404 or 410", typ, t.cr.ConditionalDelete, path, p, resp.status)
			return
		}
	}
	t.r.markDeleted(typ, id)
	c.pass()
}

// jsonPatch patches a resource with a JSON Patch that sets language.
func (t *typeRun) jsonPatch(ctx context.Context) {
	typ := t.cr.Type
	c := t.moreBegin("rest.patch.json-patch")
	if !t.cr.supports("patch") {
		c.skip("the CapabilityStatement does not declare patch for %s", typ)
		return
	}
	id := t.createFor(ctx, c, "patch", "patch")
	if id == "" {
		return
	}
	path := typ + "/" + url.PathEscape(id)
	patch := []byte(`[{"op": "add", "path": "/language", "value": "de"}]`)
	resp := c.do(ctx, http.MethodPatch, path, http.Header{"Content-Type": {"application/json-patch+json"}}, patch)
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
		return
	case resp.status == http.StatusUnsupportedMediaType:
		c.skip("PATCH %s answered 415: the server takes another patch format (R4 allows JSON Patch, XML Patch or FHIRPath Patch)", path)
		return
	case resp.status != http.StatusOK:
		c.fail("%s; the server answered %d to PATCH %s with a JSON Patch", t.claim("patch"), resp.status, path)
		return
	}
	lang := ""
	if resp.res != nil && resp.res.Type == typ {
		lang, _ = resp.res.Tree["language"].(string)
	} else if t.cr.supports("read") {
		var problem string
		if lang, problem = t.readLanguage(ctx, c, id); problem != "" {
			c.fail("%s", problem)
			return
		}
	} else {
		c.pass() // nothing to read the result back with
		return
	}
	if lang != "de" {
		c.fail("PATCH %s answered 200, but the resource has language %q, not the \"de\" the JSON Patch added", path, lang)
		return
	}
	c.pass()
}

// declaresOperation reports whether the type declares the operation.
func (t *typeRun) declaresOperation(name string) bool {
	for _, op := range t.cr.Operation {
		if op.Name == name || (name == "validate" && strings.HasSuffix(op.Definition, "/Resource-validate")) {
			return true
		}
	}
	return false
}

// validateOp posts a valid and an invalid resource to [type]/$validate.
func (t *typeRun) validateOp(ctx context.Context) {
	typ := t.cr.Type
	valid, invalid := t.moreBegin("rest.validate.valid"), t.moreBegin("rest.validate.invalid")
	if !t.declaresOperation("validate") {
		valid.skip("the CapabilityStatement does not declare the operation validate for %s", typ)
		invalid.skip("the CapabilityStatement does not declare the operation validate for %s", typ)
		return
	}
	path := typ + "/$validate"
	params := func(res []byte) []byte {
		b, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": []any{
			map[string]any{"name": "resource", "resource": json.RawMessage(res)},
		}})
		return b
	}
	good, _ := t.r.sample(typ, "", nil)
	resp := valid.do(ctx, http.MethodPost, path, nil, params(good))
	errs, problem := outcomeErrors(resp)
	switch {
	case resp.err != nil:
		valid.fail("%v", resp.err)
	case resp.status != http.StatusOK:
		valid.fail("CapabilityStatement says %s supports the operation validate; the server answered %d to POST %s with a valid %s", typ, resp.status, path, typ)
	case problem != "":
		valid.fail("POST %s: %s", path, problem)
	case errs > 0:
		valid.fail("POST %s of the kit's valid %s returned an OperationOutcome with %d error issues", path, typ, errs)
	default:
		valid.pass()
	}
	bad, _ := t.r.sample(typ, "", map[string]any{"conformanceKitUnknownElement": true})
	resp = invalid.do(ctx, http.MethodPost, path, nil, params(bad))
	errs, problem = outcomeErrors(resp)
	switch {
	case resp.err != nil:
		invalid.fail("%v", resp.err)
	case resp.status == http.StatusOK && problem == "" && errs == 0:
		invalid.fail("POST %s of a %s with an element R4 does not define answered 200 with no error issue", path, typ)
	case resp.status != http.StatusOK && (resp.status < 400 || resp.status > 499):
		invalid.fail("CapabilityStatement says %s supports the operation validate; the server answered %d to POST %s with an invalid %s", typ, resp.status, path, typ)
	case problem != "":
		invalid.fail("POST %s answered %d: %s", path, resp.status, problem)
	default:
		invalid.pass()
	}
}

// outcomeErrors counts the error and fatal issues of the OperationOutcome
// in the response; problem says what is wrong when it is not one.
func outcomeErrors(resp response) (errs int, problem string) {
	if resp.res == nil || resp.res.Type != "OperationOutcome" {
		what := "no FHIR resource"
		if resp.res != nil {
			what = "a " + resp.res.Type
		}
		return 0, fmt.Sprintf("the answer (status %d) is %s, not an OperationOutcome", resp.status, what)
	}
	issues, _ := resp.res.Tree["issue"].([]any)
	if len(issues) == 0 {
		return 0, "the OperationOutcome has no issue"
	}
	for _, is := range issues {
		m, _ := is.(map[string]any)
		if s, _ := m["severity"].(string); s == string(fhir.SeverityError) || s == string(fhir.SeverityFatal) {
			errs++
		}
	}
	return errs, ""
}

// onBase returns the path, relative to the base, of a link on the base
// (absolute or relative), or "" when it points elsewhere: the kit follows
// no link off the host it was given.
func (r *runner) onBase(link string) string {
	u, err := r.base.Parse(link)
	if err != nil || u.Host != r.base.Host || u.Scheme != r.base.Scheme {
		return ""
	}
	rel, ok := strings.CutPrefix(u.Path, strings.TrimRight(r.base.Path, "/")+"/")
	if !ok || rel == "" {
		return ""
	}
	if u.RawQuery != "" {
		rel += "?" + u.RawQuery
	}
	return rel
}

// conditionalTarget creates the resource a conditional update or delete
// (what) is to match, by the identifier of key, and checks that a search by
// that identifier finds it alone; false when the check is settled (failed
// or skipped) without sending the conditional request.
func (t *typeRun) conditionalTarget(ctx context.Context, c *checkRun, key, what string) (string, bool) {
	typ := t.cr.Type
	if ok, why := t.searchableByIdentifier(); !ok {
		c.skip("%s", why)
		return "", false
	}
	id := t.createFor(ctx, c, key, what)
	if id == "" {
		return "", false
	}
	if ids, problem := t.byIdentifier(ctx, c, key); problem != "" || !slices.Equal(ids, []string{id}) {
		c.skip("a search by identifier did not find %s/%s alone (%s%v), so the kit sends no conditional %s", typ, id, problem, ids, what)
		return "", false
	}
	return id, true
}

// createFor creates the resource of key that a check then acts on (what:
// read, patch…); "" after failing the check when the create gave no id.
func (t *typeRun) createFor(ctx context.Context, c *checkRun, key, what string) string {
	id, resp := t.createWith(ctx, c, key, nil, nil)
	if id == "" {
		c.fail("create answered %d without an id, so there was nothing to %s", resp.status, what)
	}
	return id
}
