package server

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/fhir/search"
	"infusion/store"
)

// searchType answers GET /T?… and POST /T/_search.
func (s *Server) searchType(c echo.Context) error {
	t := c.Param("type")
	return s.runSearch(c, []string{t}, "/"+t, nil)
}

// searchCompartment answers GET /Patient/{id}/T: the search on T within
// the Patient compartment of that patient (which need not be stored here).
func (s *Server) searchCompartment(c echo.Context) error {
	t, pid := c.Param("type"), c.Param("pid")
	if !fhir.IsValidID(pid) {
		return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "", "%q is not a valid id", pid)
	}
	comp := &store.Compartment{Params: s.search.CompartmentParams(t), Type: "Patient", ID: pid}
	if len(comp.Params) == 0 {
		return fhir.Errorf(fhir.KindNotFound, fhir.IssueNotSupported, "", "%s is not in the Patient compartment", t)
	}
	return s.runSearch(c, []string{t}, "/Patient/"+pid+"/"+t, comp)
}

// searchSystem answers GET /?_type=… and POST /_search: a search across
// types (all stored types when _type is absent) with the common parameters.
func (s *Server) searchSystem(c echo.Context) error {
	params, err := searchParams(c)
	if err != nil {
		return err
	}
	types := storedTypes
	if v := params.Get("_type"); v != "" {
		types = nil
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if !s.types[t] {
				return fhir.Errorf(fhir.KindInvalid, fhir.IssueNotSupported, "", "_type: %s is not a type this server stores", t)
			}
			types = append(types, t)
		}
	}
	return s.runSearch(c, types, "/", nil)
}

// searchParams returns the search parameters of a request: the query, and
// for POST …/_search the form body too (repetitions of a name in both are
// ANDed, as repetitions are).
func searchParams(c echo.Context) (url.Values, error) {
	params := url.Values{}
	for k, vs := range c.Request().URL.Query() {
		params[k] = vs
	}
	if c.Request().Method == http.MethodPost {
		if err := c.Request().ParseForm(); err != nil {
			return nil, fhir.Errorf(fhir.KindInvalid, fhir.IssueStructure, "", "the form body cannot be read: %v", err)
		}
		for k, vs := range c.Request().PostForm {
			params[k] = append(params[k], vs...)
		}
	}
	return params, nil
}

// strictHandling reads Prefer: handling=strict|lenient (lenient by
// default).
func strictHandling(c echo.Context) bool { return strings.EqualFold(prefer(c)["handling"], "strict") }

// runSearch parses, runs and answers a search with a searchset Bundle.
func (s *Server) runSearch(c echo.Context, types []string, path string, comp *store.Compartment) error {
	params, err := searchParams(c)
	if err != nil {
		return err
	}
	q, err := s.search.Parse(types, params, search.Options{Strict: strictHandling(c), Now: time.Now()})
	if err != nil {
		return err
	}
	res, err := s.store.Search(c.Request().Context(), store.SearchRequest{Query: q, Compartment: comp})
	if err != nil {
		return err
	}
	base := s.baseURL(c)
	self := base + path
	if path == "/" {
		self = base
		if t := params.Get("_type"); t != "" {
			q.Used.Set("_type", t)
		}
	}
	bundle := fhir.Bundle{ResourceType: "Bundle", ID: newID(), Type: "searchset",
		Meta: &fhir.BundleMeta{LastUpdated: fhir.FormatInstant(time.Now())}}
	if res.Total >= 0 {
		bundle.Total = &res.Total
	}
	bundle.Link = append(bundle.Link,
		fhir.BundleLink{Relation: "self", URL: link(self, withPage(q.Used, q.Page))},
		fhir.BundleLink{Relation: "first", URL: link(self, q.Used)})
	if res.Next != "" {
		bundle.Link = append(bundle.Link, fhir.BundleLink{Relation: "next", URL: link(self, withPage(q.Used, res.Next))})
	}
	if res.Previous != "" {
		bundle.Link = append(bundle.Link, fhir.BundleLink{Relation: "previous", URL: link(self, withPage(q.Used, res.Previous))})
	}
	for _, group := range []struct {
		versions []store.Version
		mode     string
	}{{res.Matches, "match"}, {res.Included, "include"}} {
		for _, v := range group.versions {
			body := v.Body
			if keep := s.search.Keep(q, v.Type); keep != nil {
				if body, err = fhir.Subset(v.Body, keep); err != nil {
					return err
				}
			}
			bundle.Entry = append(bundle.Entry, fhir.Entry{
				FullURL:  base + "/" + v.Type + "/" + v.ID,
				Resource: body,
				Search:   &fhir.EntrySearch{Mode: group.mode},
			})
		}
	}
	return s.writeJSON(c, http.StatusOK, bundle)
}

// withPage returns params with the paging cursor set.
func withPage(params url.Values, page string) url.Values {
	if page == "" {
		return params
	}
	out := maps.Clone(params)
	out.Set("_page", page)
	return out
}
