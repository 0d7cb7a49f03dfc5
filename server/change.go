package server

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"infusion/fhir"
	"infusion/fhir/patch"
	"infusion/fhir/search"
	"infusion/mapping"
	"infusion/store"
)

// change is one write the REST API or a Bundle entry asks for. The same
// code applies it whichever way it came.
type change struct {
	method      string // POST, PUT, PATCH or DELETE
	typ, id     string // id is "" for a create and for a conditional update or delete
	cond        string // the search of a conditional update or delete
	ifNoneExist string // the search of a conditional create
	ifMatch     int
	res         *fhir.Resource // the validated body of a create or update
	// staged is res made ready to store under id, when that was done
	// before the write transaction.
	staged *staged
	// makePatch turns the current resource into the patched one (PATCH).
	makePatch func(current []byte) (*fhir.Resource, error)
}

// staged is a validated resource made ready to store under an id: its body
// with the id set, its model rows and its search index entries. Staging is
// the CPU work of a write; done before the write transaction whenever the
// id is known, it keeps the single writer's critical section short.
type staged struct {
	id    string
	body  *fhir.Prepared
	rows  mapping.Rows
	index search.Entries
}

// stage makes res ready to store as typ/id.
func (s *Server) stage(typ, id string, res *fhir.Resource) (*staged, error) {
	body, err := res.Prepare(id)
	if err != nil {
		return nil, err
	}
	rows, err := s.mapper.Map(typ, id, res.Raw())
	if err != nil {
		return nil, err
	}
	return &staged{id: id, body: body, rows: rows, index: s.search.Extract(typ, res.Tree)}, nil
}

// assignID settles the id of a create or update whose target is known
// before the write transaction — a new one for a create without
// If-None-Exist — and reports whether it is.
func (c *change) assignID() bool {
	if c.res == nil || c.ifNoneExist != "" || c.cond != "" {
		return false
	}
	if c.id == "" {
		c.id = newID()
	}
	return true
}

// stageEarly stages a create or update whose target is known before the
// write transaction.
func (s *Server) stageEarly(c *change) error {
	if !c.assignID() {
		return nil
	}
	st, err := s.stage(c.typ, c.id, c.res)
	c.staged = st
	return err
}

// result is what applying a change did.
type result struct {
	status   int // 200, 201 …
	version  store.Version
	findings []fhir.Issue // what the protocol checks found
	existing bool         // a conditional create found the resource: nothing written
	deleted  store.DeleteResult
	count    int      // resources a conditional delete deleted
	ids      []string // the resources a delete aimed at
}

// check parses and validates a resource body for a type: the one check
// create, update, patch, $validate and Bundle entries share. Errors are
// KindInvalid (kind, for a patch result) with one issue per problem.
func (s *Server) check(body []byte, typ string, kind fhir.Kind) (*fhir.Resource, []fhir.Issue, error) {
	res, err := fhir.Parse(body)
	if err != nil {
		return nil, nil, err
	}
	if res.Type != typ {
		return nil, nil, fhir.Errorf(kind, fhir.IssueInvalid, "resourceType", "the resource is a %s, not a %s", res.Type, typ)
	}
	issues, err := s.validator.Validate(res)
	if err != nil {
		return nil, nil, err
	}
	if fhir.HasErrors(issues) {
		return nil, nil, &fhir.Error{Kind: kind, Issues: issues}
	}
	return res, issues, nil
}

// apply carries out a change through a store writer: inside one write
// transaction, so that what it reads (conditions, the current version) is
// what it writes over.
func (s *Server) apply(w store.Writer, c *change) (result, error) {
	switch c.method {
	case "DELETE":
		return s.applyDelete(w, c)
	case "PATCH":
		return s.applyPatch(w, c)
	}
	if c.ifNoneExist != "" {
		matches, err := s.matches(w, c.typ, c.ifNoneExist)
		if err != nil {
			return result{}, err
		}
		switch len(matches) {
		case 0:
		case 1:
			return result{status: 200, version: matches[0], existing: true}, nil
		default:
			return result{}, fhir.Errorf(fhir.KindPreconditionFailed, fhir.IssueDuplicate, "",
				"If-None-Exist %s matches %d resources", c.ifNoneExist, len(matches))
		}
	}
	if c.method == "PUT" && c.cond != "" {
		matches, err := s.matches(w, c.typ, c.cond)
		if err != nil {
			return result{}, err
		}
		switch len(matches) {
		case 0:
			if c.id == "" {
				c.id = newID()
			}
		case 1:
			if c.id != "" && c.id != matches[0].ID {
				return result{}, fhir.Errorf(fhir.KindInvalid, fhir.IssueInvalid, c.typ+".id",
					"the body's id %q is not that of the resource the condition matches (%s)", c.id, matches[0].ID)
			}
			c.id = matches[0].ID
		default:
			return result{}, fhir.Errorf(fhir.KindPreconditionFailed, fhir.IssueDuplicate, "",
				"the condition %s matches %d resources", c.cond, len(matches))
		}
	}
	create := c.method == "POST"
	if create && c.id == "" {
		c.id = newID()
	}
	return s.write(w, c, c.res, create)
}

// write stores a validated resource under c.id, staging it unless that
// was done already.
func (s *Server) write(w store.Writer, c *change, res *fhir.Resource, create bool) (result, error) {
	st := c.staged
	if st == nil || st.id != c.id {
		var err error
		if st, err = s.stage(c.typ, c.id, res); err != nil {
			return result{}, err
		}
	}
	fs, err := s.checkProtocol(w.Facts(), c.typ, c.id, st.rows)
	if err != nil {
		return result{}, err
	}
	v, created, err := w.Put(store.Put{Type: c.typ, ID: c.id, Create: create, IfMatch: c.ifMatch, Body: st.body,
		Rows: st.rows, Index: st.index})
	if err != nil {
		return result{}, err
	}
	if err := s.recordFindings(w, v, fs); err != nil {
		return result{}, err
	}
	status := 200
	if created {
		status = 201
	}
	return result{status: status, version: v, findings: findingIssues(fs)}, nil
}

func (s *Server) applyDelete(w store.Writer, c *change) (result, error) {
	ids := []string{c.id}
	if c.cond != "" {
		matches, err := s.matches(w, c.typ, c.cond)
		if err != nil {
			return result{}, err
		}
		if len(matches) > 1 && !s.cfg.ConditionalDeleteMultiple {
			return result{}, fhir.Errorf(fhir.KindPreconditionFailed, fhir.IssueDuplicate, "",
				"the condition %s matches %d resources; this server deletes one at a time", c.cond, len(matches))
		}
		ids = ids[:0]
		for _, m := range matches {
			ids = append(ids, m.ID)
		}
		if len(ids) == 0 {
			return result{status: 200, deleted: store.NotFound}, nil
		}
	}
	r := result{status: 200, ids: ids}
	for _, id := range ids {
		v, d, err := w.Delete(c.typ, id, c.ifMatch)
		if err != nil {
			return result{}, err
		}
		r.version, r.deleted = v, d
		if d == store.Deleted {
			r.count++
			if err := s.closeFindings(w, c.typ, id); err != nil {
				return result{}, err
			}
		}
	}
	return r, nil
}

// applyPatch patches the current version and writes the result, after the
// same validation as any write; a result that is not valid is 422.
func (s *Server) applyPatch(w store.Writer, c *change) (result, error) {
	cur, err := w.Read(c.typ, c.id)
	if err != nil {
		return result{}, err
	}
	if cur.Deleted {
		return result{}, fhir.Errorf(fhir.KindGone, fhir.IssueDeleted, "", "%s/%s is deleted", c.typ, c.id)
	}
	if c.ifMatch > 0 && c.ifMatch != cur.VersionID {
		return result{}, fhir.Errorf(fhir.KindPreconditionFailed, fhir.IssueConflict, "",
			"If-Match names version %d of %s/%s, but the current version is %d", c.ifMatch, c.typ, c.id, cur.VersionID)
	}
	res, err := c.makePatch(cur.Body)
	if err != nil {
		return result{}, err
	}
	if res.ID != c.id {
		return result{}, fhir.Errorf(fhir.KindUnprocessable, fhir.IssueInvalid, c.typ+".id", "a patch may not change the id")
	}
	c.ifMatch = cur.VersionID
	return s.write(w, c, res, false)
}

// patcher returns the function that patches a resource with a JSON Patch
// document or a FHIRPath Patch Parameters resource.
func (s *Server) patcher(typ, contentType string, body []byte) (func(current []byte) (*fhir.Resource, error), error) {
	validated := func(patched []byte) (*fhir.Resource, error) {
		res, _, err := s.check(patched, typ, fhir.KindUnprocessable)
		return res, err
	}
	if strings.HasPrefix(contentType, "application/json-patch+json") {
		return func(current []byte) (*fhir.Resource, error) {
			out, err := patch.JSONPatch(current, body)
			if err != nil {
				return nil, patchError(err)
			}
			return validated(out)
		}, nil
	}
	params, err := fhir.Parse(body)
	if err != nil {
		return nil, err
	}
	if params.Type != "Parameters" {
		return nil, fhir.Errorf(fhir.KindInvalid, fhir.IssueInvalid, "resourceType",
			"a FHIRPath Patch is a Parameters resource, not a %s (or send a JSON Patch as application/json-patch+json)", params.Type)
	}
	return func(current []byte) (*fhir.Resource, error) {
		doc, err := fhir.Parse(current)
		if err != nil {
			return nil, err
		}
		if err := patch.FHIRPathPatch(s.model, doc.Tree, params.Tree); err != nil {
			return nil, patchError(err)
		}
		out, err := fhir.Marshal(doc.Tree)
		if err != nil {
			return nil, err
		}
		return validated(out)
	}, nil
}

// patchError turns a patch failure into its kind: a malformed patch is
// 400, one that does not apply 422.
func patchError(err error) error {
	kind := fhir.KindUnprocessable
	if errors.Is(err, patch.ErrInvalid) {
		kind = fhir.KindInvalid
	}
	return fhir.Errorf(kind, fhir.IssueProcessing, "", "%v", err)
}

// matches runs the search of a condition inside the write transaction and
// returns the matching resources (two at most: enough to tell).
func (s *Server) matches(w store.Writer, typ, query string) ([]store.Version, error) {
	params, err := url.ParseQuery(query)
	if err != nil || len(params) == 0 {
		return nil, fhir.Errorf(fhir.KindInvalid, fhir.IssueInvalid, "", "the condition %q is not a search", query)
	}
	q, err := s.search.Parse([]string{typ}, params, search.Options{Strict: true, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	limit := 2
	if s.cfg.ConditionalDeleteMultiple {
		limit = search.MaxCount
	}
	q.Count, q.Total = limit, "none"
	res, err := w.Search(store.SearchRequest{Query: q})
	if err != nil {
		return nil, err
	}
	return res.Matches, nil
}

// describe says what a result did, for an OperationOutcome.
func (r result) describe(c *change) string {
	v := r.version
	switch {
	case c.method == "DELETE" && r.deleted == store.NotFound:
		return fmt.Sprintf("%s/%s does not exist; nothing deleted", c.typ, c.id)
	case c.method == "DELETE" && r.deleted == store.AlreadyDeleted:
		return fmt.Sprintf("%s/%s was already deleted; nothing changed", v.Type, v.ID)
	case c.method == "DELETE" && r.count > 1:
		return fmt.Sprintf("deleted %d resources", r.count)
	case c.method == "DELETE":
		return fmt.Sprintf("deleted %s/%s (version %d)", v.Type, v.ID, v.VersionID)
	case r.existing:
		return fmt.Sprintf("%s/%s matches If-None-Exist; nothing created", v.Type, v.ID)
	case r.status == 201:
		return fmt.Sprintf("created %s/%s as version %d", v.Type, v.ID, v.VersionID)
	}
	return fmt.Sprintf("updated %s/%s to version %d", v.Type, v.ID, v.VersionID)
}
