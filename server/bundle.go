package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/fhir/search"
	"infusion/store"
)

// entry is one entry of a batch or transaction Bundle, parsed.
type entry struct {
	index   int
	method  string
	url     string // as sent
	fullURL string
	change  *change // the write, for POST, PUT, PATCH and DELETE
	get     *getRequest
	err     error        // what made the entry unusable
	result  result       // what applying it did
	outcome []fhir.Issue // warnings to report
	body    []byte       // a GET's answer
}

// getRequest is a read, vread, search or history in a Bundle.
type getRequest struct {
	typ, id string
	version int
	history bool
	query   url.Values
}

// processing order of a transaction (bundle.html#transaction).
var methodOrder = map[string]int{"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}

// bundle answers POST / with a batch or transaction Bundle.
func (s *Server) bundle(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	b, err := fhir.Parse(body)
	if err != nil {
		return err
	}
	if b.Type != "Bundle" {
		return fhir.Errorf(fhir.KindInvalid, fhir.IssueInvalid, "resourceType", "POST to the base takes a batch or transaction Bundle, not a %s", b.Type)
	}
	if err := s.checkEnvelope(b); err != nil {
		return err
	}
	kind, _ := b.Tree["type"].(string)
	if kind != "batch" && kind != "transaction" {
		return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "Bundle.type", "Bundle.type is %q; the base accepts batch and transaction", kind)
	}
	raw := asList(b.Tree["entry"])
	if len(raw) > s.cfg.MaxEntries {
		return fhir.Errorf(fhir.KindTooLarge, fhir.IssueTooLong, "Bundle.entry", "the Bundle has %d entries; the limit is %d", len(raw), s.cfg.MaxEntries)
	}
	base := s.baseURL(c)
	entries := make([]*entry, len(raw))
	parallel(len(raw), func(i int) { entries[i] = s.parseEntry(i, raw[i], base) })
	if kind == "transaction" {
		err = s.transaction(c, entries)
	} else {
		s.batch(c, entries)
	}
	if err != nil {
		return err
	}
	return s.writeJSON(c, http.StatusOK, s.responseBundle(c, kind+"-response", entries))
}

// checkEnvelope validates the Bundle but not its entries' resources, which
// are checked one by one as the requests they belong to.
func (s *Server) checkEnvelope(b *fhir.Resource) error {
	issues, err := s.validator.ValidateEnvelope(b)
	if err != nil {
		return err
	}
	if fhir.HasErrors(issues) {
		return &fhir.Error{Kind: fhir.KindInvalid, Issues: issues}
	}
	return nil
}

// parseEntry reads and checks one entry: its request, and its resource,
// validated as a create or update would validate it.
func (s *Server) parseEntry(i int, raw any, base string) *entry {
	e := &entry{index: i}
	fail := func(err error) *entry {
		e.err = e.locate(err)
		return e
	}
	obj, _ := raw.(map[string]any)
	req, _ := obj["request"].(map[string]any)
	e.method, _ = req["method"].(string)
	e.url, _ = req["url"].(string)
	e.fullURL, _ = obj["fullUrl"].(string)
	if e.method == "" || e.url == "" {
		return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueRequired, "request", "the entry needs request.method and request.url"))
	}
	target := strings.TrimPrefix(strings.TrimPrefix(e.url, base), "/")
	pathPart, rawQuery, _ := strings.Cut(target, "?")
	segs := strings.Split(pathPart, "/")
	typ := segs[0]
	if !s.types[typ] {
		if s.validator.IsResourceType(typ) {
			return fail(fhir.Errorf(fhir.KindNotFound, fhir.IssueNotSupported, "request.url",
				"%s is not a type this server stores (it stores %s)", typ, strings.Join(storedTypes, ", ")))
		}
		return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "request.url", "%q does not name a resource type", e.url))
	}
	if readOnlyTypes[typ] && e.method != "GET" && e.method != "HEAD" {
		return fail(readOnly(e.method, typ))
	}
	id := ""
	if len(segs) > 1 {
		id = segs[1]
		if !fhir.IsValidID(id) {
			return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "request.url", "%q has an invalid id", e.url))
		}
	}
	ifMatch, err := parseIfMatch(req["ifMatch"])
	if err != nil {
		return fail(err)
	}
	switch e.method {
	case "GET", "HEAD":
		g := &getRequest{typ: typ, id: id}
		switch {
		case len(segs) == 4 && segs[2] == "_history":
			if g.version, err = strconv.Atoi(segs[3]); err != nil || g.version < 1 {
				return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "request.url", "%q has an invalid version", e.url))
			}
		case len(segs) == 3 && segs[2] == "_history":
			g.history = true
		case len(segs) > 2:
			return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueNotSupported, "request.url", "%q is not a read, vread, search or history", e.url))
		}
		if g.query, err = url.ParseQuery(rawQuery); err != nil {
			return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "request.url", "%q has an invalid query", e.url))
		}
		e.get = g
		return e
	case "DELETE":
		e.change = &change{method: "DELETE", typ: typ, id: id, cond: rawQuery, ifMatch: ifMatch}
		if id == "" && rawQuery == "" {
			return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueRequired, "request.url", "a DELETE needs an id or a condition"))
		}
		return e
	case "POST", "PUT", "PATCH":
	default:
		return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "request.method", "%q is not a method of a Bundle entry", e.method))
	}
	resource, ok := obj["resource"].(map[string]any)
	if !ok {
		return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueRequired, "resource", "a %s entry needs a resource", e.method))
	}
	resBody, err := fhir.Marshal(resource)
	if err != nil {
		return fail(err)
	}
	ch := &change{method: e.method, typ: typ, id: id, ifMatch: ifMatch}
	e.change = ch
	if e.method == "PATCH" {
		if id == "" {
			return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueRequired, "request.url", "a PATCH needs an id"))
		}
		ct, patchBody := "application/fhir+json", resBody
		if resource["resourceType"] == "Binary" { // a JSON Patch, as Binary
			ct, _ = resource["contentType"].(string)
			data, _ := resource["data"].(string)
			if patchBody, err = base64.StdEncoding.DecodeString(data); err != nil {
				return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "resource.data", "the JSON Patch is not base64"))
			}
		}
		if ch.makePatch, err = s.patcher(typ, ct, patchBody); err != nil {
			return fail(err)
		}
		return e
	}
	switch {
	case e.method == "POST" && id != "":
		return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "request.url", "a POST goes to the type, not to %q", e.url))
	case e.method == "POST":
		ch.ifNoneExist, _ = req["ifNoneExist"].(string)
	case id == "" && rawQuery == "":
		return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueRequired, "request.url", "a PUT needs an id or a condition"))
	case id == "":
		ch.cond = rawQuery
	}
	res, warnings, err := s.check(resBody, typ, fhir.KindInvalid)
	if err != nil {
		return fail(err)
	}
	if e.method == "PUT" && id != "" && res.ID != id {
		return fail(fhir.Errorf(fhir.KindInvalid, fhir.IssueInvalid, typ+".id", "the resource's id %q is not the id of request.url %q", res.ID, e.url))
	}
	if ch.cond != "" {
		ch.id = res.ID
	}
	ch.res, e.outcome = res, warnings
	return e
}

// parseIfMatch reads an entry's request.ifMatch: W/"3", "3" or 3.
func parseIfMatch(v any) (int, error) {
	s, _ := v.(string)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(s, "W/"), `"`))
	if err != nil || n < 1 {
		return 0, fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "request.ifMatch", "%q is not a version tag such as W/\"3\"", s)
	}
	return n, nil
}

// locate places an error's issues in the entry: an expression relative to
// the entry (request.url) becomes Bundle.entry[3].request.url, one on the
// resource (MedicationRequest.status) Bundle.entry[3].resource.status —
// except for a PATCH, whose resource is the patch: there the entry is named
// beside the element of the patched result — and an issue without an
// expression names the entry.
func (e *entry) locate(err error) error {
	fe := asFHIRError(err)
	if fe.Kind == fhir.KindInternal {
		return err
	}
	path := e.path()
	out := &fhir.Error{Kind: fe.Kind, Err: fe.Err}
	for _, is := range fe.Issues {
		var exprs []string
		for _, x := range is.Expression {
			switch head, rest, _ := strings.Cut(x, "."); {
			case head == "request" || head == "resource" || head == "fullUrl":
				exprs = append(exprs, path+"."+x)
			case head != "" && head[0] >= 'A' && head[0] <= 'Z' && e.method == "PATCH":
				exprs = append(exprs, path, x)
			case head != "" && head[0] >= 'A' && head[0] <= 'Z':
				exprs = append(exprs, strings.TrimSuffix(path+".resource."+rest, "."))
			default:
				exprs = append(exprs, path+".resource."+x)
			}
		}
		if len(exprs) == 0 {
			exprs = []string{path}
		}
		is.Expression = exprs
		out.Issues = append(out.Issues, is)
	}
	return out
}

// transaction applies every entry in one write transaction, in the
// specification's order (DELETE, POST, PUT and PATCH, GET and HEAD), with
// urn:uuid and conditional references resolved; the first failure undoes
// them all. Entries whose targets are known without the database are
// linked and staged before it, in parallel.
func (s *Server) transaction(c echo.Context, entries []*entry) error {
	for _, e := range entries {
		if e.err != nil {
			return e.err
		}
	}
	known := map[string]string{}
	for _, e := range entries {
		if ch := e.change; ch != nil && ch.assignID() && e.fullURL != "" {
			known[e.fullURL] = ch.typ + "/" + ch.id
		}
	}
	parallel(len(entries), func(i int) { s.stageLinked(entries[i].change, known) })

	order := make([]*entry, len(entries))
	copy(order, entries)
	sort.SliceStable(order, func(i, j int) bool { return methodOrder[order[i].method] < methodOrder[order[j].method] })
	return s.store.Update(c.Request().Context(), func(w store.Writer) error {
		targets := targets{}
		deletes := 0
		for _, e := range order {
			if e.method != "DELETE" {
				break
			}
			deletes++
			if err := s.runEntry(w, e, nil); err != nil {
				return e.locate(err)
			}
			for _, id := range e.result.ids {
				if err := targets.claim(e, id); err != nil {
					return err
				}
			}
		}
		refs, err := s.resolveTargets(w, order[deletes:], targets)
		if err != nil {
			return err
		}
		for _, e := range order[deletes:] {
			if e.result.existing {
				continue // a conditional create that found its resource
			}
			if err := s.runEntry(w, e, refs); err != nil {
				return e.locate(err)
			}
		}
		return nil
	})
}

// parallel runs f(0) … f(n-1) on one worker per CPU. Long-lived workers
// keep their grown stacks: validation recurses deeply.
func parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

// path is the FHIRPath of the entry in its Bundle.
func (e *entry) path() string { return fmt.Sprintf("Bundle.entry[%d]", e.index) }

// targets are the resources a transaction changes, each with the index of
// the entry that changes it.
type targets map[string]int

// claim records that entry e changes the resource id of its type; a second
// entry about the same resource fails the transaction.
func (t targets) claim(e *entry, id string) error {
	key := e.change.typ + "/" + id
	if j, dup := t[key]; dup {
		return e.locate(fhir.Errorf(fhir.KindInvalid, fhir.IssueDuplicate, "request.url",
			"%s is the target of entries %d and %d; a transaction may change a resource once", key, j, e.index))
	}
	t[key] = e.index
	return nil
}

// resolveTargets settles which resource each write of a transaction is
// about — the match of a conditional create or update, a new id otherwise —
// checks that no resource is the target of two entries, and returns the
// fullUrls that references may use, mapped to Type/id.
func (s *Server) resolveTargets(w store.Writer, entries []*entry, claimed targets) (map[string]string, error) {
	refs := map[string]string{}
	for _, e := range entries {
		ch := e.change
		if ch == nil {
			continue
		}
		switch {
		case ch.method == "POST" && ch.ifNoneExist != "":
			matches, err := s.matches(w, ch.typ, ch.ifNoneExist)
			if err != nil {
				return nil, e.locate(err)
			}
			switch len(matches) {
			case 0:
				ch.id = newID()
			case 1:
				ch.id = matches[0].ID
				e.result = result{status: 200, version: matches[0], existing: true}
			default:
				return nil, e.locate(fhir.Errorf(fhir.KindPreconditionFailed, fhir.IssueDuplicate, "request.ifNoneExist",
					"If-None-Exist %s matches %d resources", ch.ifNoneExist, len(matches)))
			}
			ch.ifNoneExist = ""
		case ch.method == "PUT" && ch.cond != "":
			matches, err := s.matches(w, ch.typ, ch.cond)
			if err != nil {
				return nil, e.locate(err)
			}
			switch {
			case len(matches) > 1:
				return nil, e.locate(fhir.Errorf(fhir.KindPreconditionFailed, fhir.IssueDuplicate, "request.url",
					"the condition %s matches %d resources", ch.cond, len(matches)))
			case len(matches) == 1:
				ch.id = matches[0].ID
			case ch.id == "":
				ch.id = newID()
			}
			ch.cond = ""
		}
		if err := claimed.claim(e, ch.id); err != nil {
			return nil, err
		}
		if e.fullURL != "" {
			if _, dup := refs[e.fullURL]; dup {
				return nil, e.locate(fhir.Errorf(fhir.KindInvalid, fhir.IssueDuplicate, "fullUrl", "two entries have the fullUrl %s", e.fullURL))
			}
			refs[e.fullURL] = ch.typ + "/" + ch.id
		}
	}
	return refs, nil
}

// stageLinked stages a create or update before the write transaction when
// all it needs is known: its id, and the targets of its references to
// other entries (refs: fullUrl → Type/id). One that refers to an entry
// whose target the database decides, or holds a conditional reference,
// is left to link inside the transaction.
func (s *Server) stageLinked(ch *change, refs map[string]string) {
	if ch == nil || ch.res == nil || ch.id == "" || ch.cond != "" || ch.ifNoneExist != "" {
		return
	}
	res, err := linkEntries(ch.res, refs)
	if err != nil {
		return
	}
	if urn, conditional := unresolved(res); urn != "" || conditional {
		return
	}
	if st, err := s.stage(ch.typ, ch.id, res); err == nil {
		ch.res, ch.staged = res, st
	}
}

// linkEntries rewrites a resource's references to other entries' fullUrls.
func linkEntries(res *fhir.Resource, refs map[string]string) (*fhir.Resource, error) {
	found := false
	fhir.EachReference(res.Tree, func(ref string) { _, ok := refs[ref]; found = found || ok })
	if !found {
		return res, nil
	}
	raw, _, err := fhir.RewriteReferences(res.Raw(), func(ref string) (string, bool) {
		to, ok := refs[ref]
		return to, ok
	})
	if err != nil {
		return nil, err
	}
	return fhir.Parse(raw)
}

// unresolved returns the first urn:uuid: or urn:oid: reference left in a
// resource, and whether it holds a conditional reference.
func unresolved(res *fhir.Resource) (urn string, conditional bool) {
	fhir.EachReference(res.Tree, func(ref string) {
		switch fhir.ParseReference(ref).Kind {
		case fhir.RefURN:
			if urn == "" || ref < urn {
				urn = ref // the least: the message does not depend on map order
			}
		case fhir.RefConditional:
			conditional = true
		}
	})
	return urn, conditional
}

// runEntry applies one entry through a writer: a read, or a write whose
// resource, unless staged already, gets its references to other entries
// (refs, nil in a batch) and its conditional references resolved first.
func (s *Server) runEntry(w store.Writer, e *entry, refs map[string]string) error {
	if e.get != nil {
		var err error
		e.body, err = s.runGet(w, e.get)
		return err
	}
	ch := e.change
	if ch.res != nil && ch.staged == nil {
		res, err := linkEntries(ch.res, refs)
		if err != nil {
			return err
		}
		if urn, _ := unresolved(res); urn != "" {
			why := "no entry of the transaction that writes a resource has that fullUrl"
			if refs == nil {
				why = "the entries of a batch are independent (send a transaction to link them)"
			}
			return fhir.Errorf(fhir.KindInvalid, fhir.IssueNotFound, "resource", "the reference %s cannot be resolved: %s", urn, why)
		}
		ch.res = res
		if err := s.resolveConditional(w, ch); err != nil {
			return err
		}
	}
	r, err := s.apply(w, ch)
	if err != nil {
		return err
	}
	e.result = r
	return nil
}

// resolveConditional replaces references such as
// "MedicationRequest?identifier=http://x|1" with the one resource they
// match.
func (s *Server) resolveConditional(w store.Writer, ch *change) error {
	var failed error
	raw, changed, err := fhir.RewriteReferences(ch.res.Raw(), func(ref string) (string, bool) {
		r := fhir.ParseReference(ref)
		if r.Kind != fhir.RefConditional || failed != nil {
			return "", false
		}
		if !s.types[r.Type] {
			failed = fhir.Errorf(fhir.KindNotFound, fhir.IssueNotFound, "resource", "the conditional reference %s names a type this server does not store", ref)
			return "", false
		}
		matches, err := s.matches(w, r.Type, r.Query)
		switch {
		case err != nil:
			failed = err
		case len(matches) == 0:
			failed = fhir.Errorf(fhir.KindNotFound, fhir.IssueNotFound, "resource", "the conditional reference %s matches nothing", ref)
		case len(matches) > 1:
			failed = fhir.Errorf(fhir.KindPreconditionFailed, fhir.IssueDuplicate, "resource", "the conditional reference %s matches %d resources", ref, len(matches))
		default:
			return r.Type + "/" + matches[0].ID, true
		}
		return "", false
	})
	if failed != nil || err != nil || !changed {
		return errors.Join(failed, err)
	}
	ch.res, err = fhir.Parse(raw)
	return err
}

// batch applies the entries one by one, each in its own write transaction;
// each failure is that entry's alone. Writes are staged before, in
// parallel.
func (s *Server) batch(c echo.Context, entries []*entry) {
	parallel(len(entries), func(i int) {
		if e := entries[i]; e.err == nil && e.change != nil {
			e.change.assignID()
			s.stageLinked(e.change, nil)
		}
	})
	for _, e := range entries {
		if e.err != nil {
			continue
		}
		err := s.store.Update(c.Request().Context(), func(w store.Writer) error { return s.runEntry(w, e, nil) })
		if err != nil {
			e.err = e.locate(err)
		}
	}
}

// runGet answers a read, vread, search or history of a Bundle entry.
func (s *Server) runGet(w store.Writer, g *getRequest) ([]byte, error) {
	switch {
	case g.id != "" && g.history:
		versions, err := w.History(store.HistoryQuery{Type: g.typ, ID: g.id, Count: search.MaxCount})
		if err != nil {
			return nil, err
		}
		b := fhir.Bundle{ResourceType: "Bundle", Type: "history"}
		for _, v := range versions {
			b.Entry = append(b.Entry, historyEntry("", v))
		}
		return fhir.Marshal(b)
	case g.id != "":
		var v store.Version
		var err error
		if g.version > 0 {
			v, err = w.VRead(g.typ, g.id, g.version)
		} else {
			v, err = w.Read(g.typ, g.id)
		}
		if err != nil {
			return nil, err
		}
		if v.Deleted {
			return nil, fhir.Errorf(fhir.KindGone, fhir.IssueDeleted, "", "%s/%s is deleted", g.typ, g.id)
		}
		return v.Body, nil
	}
	q, err := s.search.Parse([]string{g.typ}, g.query, search.Options{Now: time.Now()})
	if err != nil {
		return nil, err
	}
	res, err := w.Search(store.SearchRequest{Query: q})
	if err != nil {
		return nil, err
	}
	b := fhir.Bundle{ResourceType: "Bundle", Type: "searchset"}
	if res.Total >= 0 {
		b.Total = &res.Total
	}
	for _, v := range res.Matches {
		b.Entry = append(b.Entry, fhir.Entry{FullURL: v.Type + "/" + v.ID, Resource: v.Body, Search: &fhir.EntrySearch{Mode: "match"}})
	}
	return fhir.Marshal(b)
}

func mustMarshal(v any) []byte {
	b, err := fhir.Marshal(v)
	if err != nil {
		panic(err) // the server's own types always marshal
	}
	return b
}

// statusOfError is the HTTP status of an error, by the one table.
func statusOfError(err error) int { return statusOf[asFHIRError(err).Kind] }

// responseBundle is the batch-response or transaction-response: one entry
// per request entry, in their order.
func (s *Server) responseBundle(c echo.Context, kind string, entries []*entry) fhir.Bundle {
	base := s.baseURL(c)
	prefer := preference(c)
	b := fhir.Bundle{ResourceType: "Bundle", ID: newID(), Type: kind,
		Meta: &fhir.BundleMeta{LastUpdated: fhir.FormatInstant(time.Now())}}
	for _, e := range entries {
		out := fhir.Entry{Response: &fhir.EntryResponse{}}
		resp := out.Response
		switch {
		case e.err != nil:
			status := statusOfError(e.err)
			resp.Status = strconv.Itoa(status) + " " + http.StatusText(status)
			resp.Outcome = mustMarshal(fhir.NewOperationOutcome(issuesOf(e.err)...))
		case e.get != nil:
			resp.Status = "200 OK"
			if e.method == "GET" {
				out.Resource = e.body
			}
		default:
			r := e.result
			v := r.version
			resp.Status = strconv.Itoa(r.status) + " " + http.StatusText(r.status)
			if v.ID != "" {
				resp.Etag = v.ETag()
				resp.LastModified = fhir.FormatInstant(v.LastUpdated)
				if e.method != "DELETE" {
					resp.Location = v.Type + "/" + v.ID + "/_history/" + itoa(v.VersionID)
					out.FullURL = base + "/" + v.Type + "/" + v.ID
				}
			}
			switch {
			case e.method == "DELETE" || prefer == "OperationOutcome" || len(r.findings) > 0:
				info := fhir.Issue{Severity: fhir.SeverityInformation, Code: fhir.IssueInformational, Diagnostics: r.describe(e.change)}
				resp.Outcome = mustMarshal(fhir.NewOperationOutcome(append(append([]fhir.Issue{info}, e.outcome...), r.findings...)...))
			}
			if prefer == "representation" && len(v.Body) > 0 && e.method != "DELETE" {
				out.Resource = json.RawMessage(v.Body)
			}
		}
		b.Entry = append(b.Entry, out)
	}
	return b
}
