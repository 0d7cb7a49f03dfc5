package kit

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// The specification pages the checks cite.
const (
	specHTTP   = "https://hl7.org/fhir/R4/http.html"
	specSearch = "https://hl7.org/fhir/R4/search.html"
)

//go:embed samples/*.json
var samples embed.FS

// sample returns the kit's minimal valid resource of type typ, tagged with
// the run id (and with the given id when not empty), or false when the kit
// has none.
func (r *runner) sample(typ, id string, extra map[string]any) ([]byte, bool) {
	data, err := samples.ReadFile("samples/" + typ + ".json")
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		return nil, false
	}
	res["meta"] = map[string]any{"tag": []any{map[string]any{"system": TagSystem, "code": r.report.RunID}}}
	if id != "" {
		res["id"] = id
	}
	for k, v := range extra {
		res[k] = v
	}
	out, err := json.Marshal(res)
	return out, err == nil
}

// restDef describes a check of the rest suite.
type restDef struct {
	id, title, level, anchor string
}

// restDefs lists the checks the rest suite runs on each resource type, in
// order.
func restDefs() []restDef {
	return []restDef{
		{"rest.create.status", "create answers 201 Created", Shall, "#create"},
		{"rest.create.location", "create returns a Location header [base]/[type]/[id]/_history/[vid]", Shall, "#create"},
		{"rest.create.etag", "create returns an ETag header with the versionId", Should, "#create"},
		{"rest.create.last-modified", "create returns a Last-Modified header", Should, "#create"},
		{"rest.read.status", "read answers 200 with the resource, its id the [id] of the URL", Shall, "#read"},
		{"rest.read.etag", "read returns an ETag header with the versionId", Should, "#read"},
		{"rest.read.content-type", "a JSON response has the content type application/fhir+json", Shall, "#mime-type"},
		{"rest.read.format-json", "_format=json returns JSON whatever the Accept header", Shall, "#mime-type"},
		{"rest.read.if-none-match", "read with If-None-Match naming the current version answers 304 Not Modified", May, "#cread"},
		{"rest.vread.status", "vread answers 200 with the version, its id and meta.versionId those of the URL", Shall, "#vread"},
		{"rest.update.status", "update of an existing resource answers 200 OK", Shall, "#update"},
		{"rest.update.etag", "update returns an ETag header with the new versionId", Shall, "#update"},
		{"rest.update.last-modified", "update returns a Last-Modified header", Shall, "#update"},
		{"rest.update.if-match-stale", "update with If-Match naming a stale version answers 412 Precondition Failed", Shall, "#concurrency"},
		{"rest.history-instance.bundle", "history of an instance is a Bundle of type history with every version", Shall, "#history"},
		{"rest.create.prefer-minimal", "create with Prefer: return=minimal returns no body", Should, "#ops"},
		{"rest.delete.status", "delete answers 200, 202 or 204", Shall, "#delete"},
		{"rest.delete.read-gone", "read of a deleted resource answers 404 or 410", Shall, "#delete"},
		{"rest.delete.read-410", "read of a deleted resource answers 410 Gone", Should, "#read"},
	}
}

// restSuite runs the rest checks on each declared resource type.
func (r *runner) restSuite(ctx context.Context) {
	for _, cr := range r.caps.resources() {
		if _, ok := r.sample(cr.Type, "", nil); !ok {
			r.begin("rest.resource", "the kit tests the interactions declared for the type", SuiteREST, cr.Type, Shall, specHTTP).
				skip("the kit has no sample %s to test with", cr.Type)
			continue
		}
		t := &typeRun{r: r, cr: cr, defs: map[string]restDef{}}
		for _, d := range restDefs() {
			t.defs[d.id] = d
		}
		t.run(ctx)
		t.runMore(ctx) // rest_more.go
	}
}

// typeRun runs the rest checks on one resource type.
type typeRun struct {
	r    *runner
	cr   capResource
	defs map[string]restDef
	ran  map[string]bool
}

func (t *typeRun) begin(id string) *checkRun {
	d := t.defs[id]
	if t.ran == nil {
		t.ran = map[string]bool{}
	}
	t.ran[id] = true
	return t.r.begin(d.id, d.title, SuiteREST, t.cr.Type, d.level, specHTTP+d.anchor)
}

// skipRest skips, with the reason, every check not run yet.
func (t *typeRun) skipRest(reason string) {
	for _, d := range restDefs() {
		if !t.ran[d.id] {
			t.begin(d.id).skip("%s", reason)
		}
	}
}

// claim is how a failure names what the CapabilityStatement says.
func (t *typeRun) claim(interaction string) string {
	return fmt.Sprintf("CapabilityStatement says %s supports %s", t.cr.Type, interaction)
}

func (t *typeRun) notDeclared(ids []string, interaction string) {
	for _, id := range ids {
		t.begin(id).skip("the CapabilityStatement does not declare %s for %s", interaction, t.cr.Type)
	}
}

func (t *typeRun) run(ctx context.Context) {
	typ := t.cr.Type
	versioned := t.cr.Versioning != "no-version"
	if !t.cr.supports("create") {
		t.skipRest(fmt.Sprintf("the CapabilityStatement does not declare create for %s, and the kit tests only resources it creates", typ))
		return
	}
	body, _ := t.r.sample(typ, "", nil)

	// create
	c := t.begin("rest.create.status")
	resp := c.do(ctx, http.MethodPost, typ, nil, body)
	id, vid, locProblem := t.createdID(resp)
	t.r.track(typ, id)
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
	case resp.status != http.StatusCreated:
		c.fail("%s; the server answered %d", t.claim("create"), resp.status)
	default:
		c.pass()
	}
	if id == "" {
		t.skipRest("create gave no id to test with")
		return
	}
	c = t.begin("rest.create.location")
	c.saw(resp)
	if locProblem != "" {
		c.fail("%s", locProblem)
	} else {
		c.pass()
	}
	t.headerCheck(t.begin("rest.create.etag"), resp, "ETag", vid, versioned)
	t.headerCheck(t.begin("rest.create.last-modified"), resp, "Last-Modified", "", true)

	// read
	path := typ + "/" + url.PathEscape(id)
	if t.cr.supports("read") {
		c = t.begin("rest.read.status")
		resp = c.do(ctx, http.MethodGet, path, nil, nil)
		switch {
		case resp.err != nil:
			c.fail("%v", resp.err)
		case resp.status != http.StatusOK:
			c.fail("%s; the server answered %d to GET %s", t.claim("read"), resp.status, path)
		case resp.res == nil || resp.res.Type != typ || resp.res.ID != id:
			c.fail("GET %s did not return the %s with id %q", path, typ, id)
		default:
			c.pass()
		}
		if v := versionID(resp); v != "" {
			vid = v
		}
		t.headerCheck(t.begin("rest.read.etag"), resp, "ETag", vid, versioned)
		c = t.begin("rest.read.content-type")
		c.saw(resp)
		if mt := mediaType(resp.header.Get("Content-Type")); resp.err == nil && mt != "application/fhir+json" {
			c.fail("GET %s answered with the content type %q, not application/fhir+json", path, resp.header.Get("Content-Type"))
		} else if resp.err != nil {
			c.fail("%v", resp.err)
		} else {
			c.pass()
		}
		c = t.begin("rest.read.format-json")
		resp = c.do(ctx, http.MethodGet, path+"?_format=json", http.Header{"Accept": {"*/*"}}, nil)
		switch mt := mediaType(resp.header.Get("Content-Type")); {
		case resp.err != nil:
			c.fail("%v", resp.err)
		case resp.status != http.StatusOK:
			c.fail("GET %s?_format=json answered %d", path, resp.status)
		case mt != "application/fhir+json" && mt != "application/json":
			c.fail("GET %s?_format=json answered with the content type %q", path, resp.header.Get("Content-Type"))
		case resp.res == nil || resp.res.Type != typ:
			c.fail("GET %s?_format=json did not return the %s as JSON", path, typ)
		default:
			c.pass()
		}
		c = t.begin("rest.read.if-none-match")
		if !versioned {
			c.skip("the CapabilityStatement says %s is not versioned", typ)
		} else {
			resp = c.do(ctx, http.MethodGet, path, http.Header{"If-None-Match": {`W/"` + vid + `"`}}, nil)
			if resp.status == http.StatusNotModified {
				c.pass()
			} else {
				c.fail("GET %s with If-None-Match: W/%q answered %d, not 304", path, vid, resp.status)
			}
		}
	} else {
		t.notDeclared([]string{"rest.read.status", "rest.read.etag", "rest.read.content-type", "rest.read.format-json", "rest.read.if-none-match"}, "read")
	}

	// vread
	if t.cr.supports("vread") {
		c = t.begin("rest.vread.status")
		p := path + "/_history/" + url.PathEscape(vid)
		resp = c.do(ctx, http.MethodGet, p, nil, nil)
		switch {
		case resp.err != nil:
			c.fail("%v", resp.err)
		case resp.status != http.StatusOK:
			c.fail("%s; the server answered %d to GET %s", t.claim("vread"), resp.status, p)
		case resp.res == nil || resp.res.ID != id || versionID(resp) != vid:
			c.fail("GET %s did not return id %q with meta.versionId %q", p, id, vid)
		default:
			c.pass()
		}
	} else {
		t.notDeclared([]string{"rest.vread.status"}, "vread")
	}

	// update
	versions := 1
	if t.cr.supports("update") {
		c = t.begin("rest.update.status")
		upd, _ := t.r.sample(typ, id, map[string]any{"language": "en"})
		resp = c.do(ctx, http.MethodPut, path, nil, upd)
		switch {
		case resp.err != nil:
			c.fail("%v", resp.err)
		case resp.status != http.StatusOK:
			c.fail("%s; the server answered %d to PUT %s", t.claim("update"), resp.status, path)
		default:
			versions++
			c.pass()
		}
		newVid := versionID(resp)
		c = t.begin("rest.update.etag")
		c.saw(resp)
		switch etag := resp.header.Get("ETag"); {
		case resp.err != nil:
			c.fail("%v", resp.err)
		case !versioned:
			c.skip("the CapabilityStatement says %s is not versioned", typ)
		case etag == "":
			c.fail("PUT %s answered without an ETag header", path)
		case etag == `W/"`+vid+`"`:
			c.fail("PUT %s answered with the ETag %s of the version before", path, etag)
		case newVid != "" && etag != `W/"`+newVid+`"`:
			c.fail("PUT %s answered with the ETag %s, but the resource's meta.versionId is %q", path, etag, newVid)
		default:
			c.pass()
		}
		t.headerCheck(t.begin("rest.update.last-modified"), resp, "Last-Modified", "", true)
		c = t.begin("rest.update.if-match-stale")
		switch {
		case versions < 2:
			c.skip("the update failed, so the kit has no stale version to send")
		case t.cr.Versioning != "versioned-update":
			c.skip("the CapabilityStatement does not declare versioning versioned-update for %s", typ)
		default:
			resp = c.do(ctx, http.MethodPut, path, http.Header{"If-Match": {`W/"` + vid + `"`}}, upd)
			if resp.status == http.StatusOK || resp.status == http.StatusCreated {
				versions++
			}
			if resp.status == http.StatusPreconditionFailed {
				c.pass()
			} else {
				c.fail("CapabilityStatement says %s has versioning versioned-update; the server answered %d to PUT with the stale If-Match: W/%q", typ, resp.status, vid)
			}
		}
	} else {
		t.notDeclared([]string{"rest.update.status", "rest.update.etag", "rest.update.last-modified", "rest.update.if-match-stale"}, "update")
	}

	// history-instance
	if t.cr.supports("history-instance") {
		c = t.begin("rest.history-instance.bundle")
		p := path + "/_history"
		resp = c.do(ctx, http.MethodGet, p, nil, nil)
		var b struct {
			Type  string `json:"type"`
			Entry []any  `json:"entry"`
		}
		switch {
		case resp.err != nil:
			c.fail("%v", resp.err)
		case resp.status != http.StatusOK:
			c.fail("%s; the server answered %d to GET %s", t.claim("history-instance"), resp.status, p)
		case resp.res == nil || resp.res.Type != "Bundle" || json.Unmarshal(resp.body, &b) != nil:
			c.fail("GET %s did not return a Bundle", p)
		case b.Type != "history":
			c.fail("GET %s returned a Bundle of type %q, not history", p, b.Type)
		case len(b.Entry) < versions:
			c.fail("GET %s returned %d entries; the kit made %d versions", p, len(b.Entry), versions)
		default:
			c.pass()
		}
	} else {
		t.notDeclared([]string{"rest.history-instance.bundle"}, "history-instance")
	}

	// Prefer: return=minimal
	c = t.begin("rest.create.prefer-minimal")
	resp = c.do(ctx, http.MethodPost, typ, http.Header{"Prefer": {"return=minimal"}}, body)
	mid, _, _ := t.createdID(resp)
	t.r.track(typ, mid)
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
	case resp.status != http.StatusCreated:
		c.fail("%s; the server answered %d to POST with Prefer: return=minimal", t.claim("create"), resp.status)
	case len(bytes.TrimSpace(resp.body)) > 0:
		c.fail("POST with Prefer: return=minimal returned a body of %d bytes", len(resp.body))
	default:
		c.pass()
	}

	// delete, on a resource of its own so that -keep keeps the others
	if !t.cr.supports("delete") {
		t.notDeclared([]string{"rest.delete.status", "rest.delete.read-gone", "rest.delete.read-410"}, "delete")
		return
	}
	c = t.begin("rest.delete.status")
	resp = c.do(ctx, http.MethodPost, typ, nil, body)
	did, _, _ := t.createdID(resp)
	t.r.track(typ, did)
	if did == "" {
		c.fail("create answered %d without an id, so there was nothing to delete", resp.status)
		t.skipRest("there was no resource to delete")
		return
	}
	dpath := typ + "/" + url.PathEscape(did)
	resp = c.do(ctx, http.MethodDelete, dpath, nil, nil)
	switch resp.status {
	case http.StatusOK, http.StatusAccepted, http.StatusNoContent:
		t.r.markDeleted(typ, did)
		c.pass()
	default:
		if resp.err != nil {
			c.fail("%v", resp.err)
		} else {
			c.fail("%s; the server answered %d to DELETE %s", t.claim("delete"), resp.status, dpath)
		}
		t.skipRest("the delete failed")
		return
	}
	if !t.cr.supports("read") {
		t.notDeclared([]string{"rest.delete.read-gone", "rest.delete.read-410"}, "read")
		return
	}
	c = t.begin("rest.delete.read-gone")
	resp = c.do(ctx, http.MethodGet, dpath, nil, nil)
	gone := resp.status
	if gone == http.StatusNotFound || gone == http.StatusGone {
		c.pass()
	} else {
		c.fail("GET %s after DELETE answered %d, not 404 or 410", dpath, gone)
	}
	c = t.begin("rest.delete.read-410")
	c.saw(resp)
	if gone == http.StatusGone {
		c.pass()
	} else {
		c.fail("GET %s after DELETE answered %d, not 410", dpath, gone)
	}
}

// headerCheck ends c: the response must carry the header; for ETag, with
// the version vid when known.
func (t *typeRun) headerCheck(c *checkRun, resp response, name, vid string, applies bool) {
	c.saw(resp)
	h := resp.header.Get(name)
	switch {
	case !applies:
		c.skip("the CapabilityStatement says %s is not versioned", t.cr.Type)
	case resp.err != nil:
		c.fail("%v", resp.err)
	case h == "":
		c.fail("the response (status %d) has no %s header", resp.status, name)
	case name == "ETag" && vid != "" && h != `W/"`+vid+`"` && h != `"`+vid+`"`:
		c.fail("the ETag is %s; the version is %q, so W/%q was expected", h, vid, vid)
	case name == "Last-Modified":
		if _, err := http.ParseTime(h); err != nil {
			c.fail("Last-Modified %q is not an HTTP date: %v", h, err)
			return
		}
		c.pass()
	default:
		c.pass()
	}
}

// createdID finds the id and version of a created resource in the
// response's Location header (or body), and what is wrong with the
// Location header ("" when nothing). It never follows the Location.
func (t *typeRun) createdID(resp response) (id, vid, problem string) {
	if resp.err != nil {
		return "", "", resp.err.Error()
	}
	if resp.res != nil && resp.res.Type == t.cr.Type {
		id, vid = resp.res.ID, versionID(resp)
	}
	loc := resp.header.Get("Location")
	if loc == "" {
		return id, vid, fmt.Sprintf("the response (status %d) has no Location header", resp.status)
	}
	u, err := t.r.base.Parse(loc)
	if err != nil {
		return id, vid, fmt.Sprintf("Location %q is not a URL: %v", loc, err)
	}
	if u.Host != t.r.base.Host {
		return id, vid, fmt.Sprintf("Location %q points to host %q, not %q (the kit does not follow it)", loc, u.Host, t.r.base.Host)
	}
	rest, ok := strings.CutPrefix(u.Path, strings.TrimRight(t.r.base.Path, "/")+"/"+t.cr.Type+"/")
	if !ok {
		return id, vid, fmt.Sprintf("Location %q is not under %s/%s/", loc, t.r.base, t.cr.Type)
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && parts[0] != "":
	case len(parts) == 3 && parts[0] != "" && parts[1] == "_history" && parts[2] != "":
		if vid == "" {
			vid = parts[2]
		}
	default:
		return id, vid, fmt.Sprintf("Location %q is not [base]/%s/[id]/_history/[vid]", loc, t.cr.Type)
	}
	if id != "" && parts[0] != id {
		return id, vid, fmt.Sprintf("Location %q names id %q, but the resource returned has id %q", loc, parts[0], id)
	}
	return parts[0], vid, ""
}

// versionID returns meta.versionId of the response's resource, or "".
func versionID(resp response) string {
	if resp.res == nil {
		return ""
	}
	meta, _ := resp.res.Tree["meta"].(map[string]any)
	v, _ := meta["versionId"].(string)
	return v
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}
