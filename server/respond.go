package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/store"
)

// baseURL is the configured base, or the request's scheme and host.
func (s *Server) baseURL(c echo.Context) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	scheme := "http"
	if c.Request().TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.Request().Host
}

// writeJSON encodes v (a struct, or raw JSON as []byte) and writes it with
// the FHIR content type, indented when _pretty=true. The body is fully
// encoded before the status is written.
func (s *Server) writeJSON(c echo.Context, status int, v any) error {
	body, ok := v.([]byte)
	if !ok {
		var err error
		if body, err = fhir.Marshal(v); err != nil {
			return err
		}
	}
	if c.QueryParam("_pretty") == "true" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, body, "", "  "); err == nil {
			body = buf.Bytes()
		}
	}
	return c.Blob(status, contentTypeFHIR, body)
}

// setVersionHeaders sets ETag and Last-Modified from a version.
func setVersionHeaders(c echo.Context, v store.Version) {
	h := c.Response().Header()
	h.Set("ETag", v.ETag())
	if !v.LastUpdated.IsZero() {
		h.Set(echo.HeaderLastModified, v.LastUpdated.UTC().Format(http.TimeFormat))
	}
}

// prefer reads the Prefer headers (RFC 7240): each preference by its
// lower-case name, with its value unquoted ("" for one without, such as
// respond-async).
func prefer(c echo.Context) map[string]string {
	out := map[string]string{}
	for _, header := range c.Request().Header.Values("Prefer") {
		for _, part := range strings.Split(header, ",") {
			for _, p := range strings.Split(part, ";") {
				if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); k != "" {
					out[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
				}
			}
		}
	}
	return out
}

// preference reads Prefer: return=, "minimal", "representation" (the
// default) or "OperationOutcome".
func preference(c echo.Context) string {
	if v, ok := prefer(c)["return"]; ok {
		return v
	}
	return "representation"
}

// respondWritten answers a create, update or patch: Location (versioned)
// when a resource was created, ETag, Last-Modified, and the body Prefer asks
// for; what says what happened, for an OperationOutcome.
func (s *Server) respondWritten(c echo.Context, status int, v store.Version, issues []fhir.Issue, what string) error {
	setVersionHeaders(c, v)
	location := s.baseURL(c) + "/" + v.Type + "/" + v.ID + "/_history/" + itoa(v.VersionID)
	if status == http.StatusCreated {
		c.Response().Header().Set(echo.HeaderLocation, location)
	}
	c.Response().Header().Set("Content-Location", location)
	switch preference(c) {
	case "minimal":
		return c.NoContent(status)
	case "OperationOutcome":
		info := fhir.Issue{Severity: fhir.SeverityInformation, Code: fhir.IssueInformational, Diagnostics: what}
		return s.writeJSON(c, status, fhir.NewOperationOutcome(append([]fhir.Issue{info}, issues...)...))
	}
	return s.writeJSON(c, status, v.Body)
}
