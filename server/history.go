package server

import (
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/store"
)

// History paging: _count defaults to 20 and is capped at 1000.
const (
	defaultCount = 20
	maxCount     = 1000
)

// history answers the instance, type and system history interactions with
// a Bundle of type history, newest first, deletes included. _count and
// _since are honoured; _page (an opaque cursor in the next link) pages.
func (s *Server) history(c echo.Context) error {
	q := store.HistoryQuery{Type: c.Param("type"), Count: defaultCount}
	path := "/_history"
	if q.Type != "" {
		path = "/" + q.Type + path
	}
	if c.Param("id") != "" {
		id, err := pathID(c)
		if err != nil {
			return err
		}
		if _, err := s.store.Read(c.Request().Context(), q.Type, id); err != nil {
			return err // unknown: 404 (a deleted resource has a history)
		}
		q.ID = id
		path = "/" + q.Type + "/" + id + "/_history"
	}
	params := url.Values{}
	if v := c.QueryParam("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "", "_count=%s is not a whole number of 0 or more", v)
		}
		q.Count = min(n, maxCount)
		params.Set("_count", strconv.Itoa(q.Count))
	}
	if v := c.QueryParam("_since"); v != "" {
		dt, err := fhir.ParseDateTime(v)
		if err != nil {
			return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "", "_since=%s is not an instant such as 2026-03-01T00:00:00Z", v)
		}
		q.Since = dt.Time
		params.Set("_since", v)
	}
	if v := c.QueryParam("_page"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "", "_page=%s is not a page of this server's history", v)
		}
		q.Before = n
	}
	self := maps.Clone(params)
	if q.Before > 0 {
		self.Set("_page", strconv.FormatInt(q.Before, 10))
	}
	base := s.baseURL(c)
	bundle := fhir.Bundle{ResourceType: "Bundle", ID: newID(), Type: "history",
		Meta: &fhir.BundleMeta{LastUpdated: fhir.FormatInstant(time.Now())},
		Link: []fhir.BundleLink{{Relation: "self", URL: link(base+path, self)}}}
	if q.Count == 0 {
		return s.writeJSON(c, http.StatusOK, bundle)
	}
	limit := q.Count
	q.Count++ // one more tells whether there is a next page
	versions, err := s.store.History(c.Request().Context(), q)
	if err != nil {
		return err
	}
	if len(versions) > limit {
		versions = versions[:limit]
		next := maps.Clone(params)
		next.Set("_page", strconv.FormatInt(versions[limit-1].Seq, 10))
		bundle.Link = append(bundle.Link, fhir.BundleLink{Relation: "next", URL: link(base+path, next)})
	}
	if q.Before > 0 {
		bundle.Link = append(bundle.Link, fhir.BundleLink{Relation: "first", URL: link(base+path, params)})
	}
	for _, v := range versions {
		bundle.Entry = append(bundle.Entry, historyEntry(base, v))
	}
	return s.writeJSON(c, http.StatusOK, bundle)
}

// historyEntry is one version in a history Bundle: the resource (none for a
// delete), the request that made it and its response.
func historyEntry(base string, v store.Version) fhir.Entry {
	e := fhir.Entry{
		FullURL:  base + "/" + v.Type + "/" + v.ID,
		Request:  &fhir.EntryRequest{Method: v.Method, URL: v.Type + "/" + v.ID},
		Response: &fhir.EntryResponse{Status: "200 OK", Etag: v.ETag(), LastModified: fhir.FormatInstant(v.LastUpdated)},
	}
	switch v.Method {
	case http.MethodPost:
		e.Request.URL = v.Type
		e.Response.Status = "201 Created"
		e.Response.Location = v.Type + "/" + v.ID + "/_history/" + itoa(v.VersionID)
	}
	if !v.Deleted {
		e.Resource = v.Body
	}
	return e
}

func link(path string, params url.Values) string {
	if len(params) == 0 {
		return path
	}
	return path + "?" + params.Encode()
}
