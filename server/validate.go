package server

import (
	"cmp"
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/store"
)

// validateOp answers POST /T/$validate and POST /T/{id}/$validate: the body
// is a resource, or a Parameters with resource and mode (create, update or
// delete). It runs the same checks as create and update, writes nothing,
// and always answers 200 with an OperationOutcome.
func (s *Server) validateOp(c echo.Context) error {
	typ, id := c.Param("type"), c.Param("id")
	if id != "" {
		if _, err := pathID(c); err != nil {
			return err
		}
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	mode := "create"
	if head, err := fhir.Parse(body); err == nil && head.Type == "Parameters" {
		var resource []byte
		for _, p := range asList(head.Tree["parameter"]) {
			pm, _ := p.(map[string]any)
			switch pm["name"] {
			case "resource":
				if r, ok := pm["resource"].(map[string]any); ok {
					resource, _ = fhir.Marshal(r)
				}
			case "mode":
				if m, ok := pm["valueCode"].(string); ok {
					mode = m
				}
			}
		}
		if mode != "create" && mode != "update" && mode != "delete" {
			return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "Parameters.parameter", "mode %q is not create, update or delete", mode)
		}
		body = resource
	}
	var issues []fhir.Issue
	switch {
	case mode == "delete":
		issues = s.validateDelete(c, typ, id)
	case len(body) == 0:
		issues = []fhir.Issue{{Severity: fhir.SeverityError, Code: fhir.IssueRequired, Diagnostics: "no resource to validate"}}
	default:
		issues = s.validateWrite(c.Request().Context(), body, typ, id, mode)
	}
	if !fhir.HasErrors(issues) {
		issues = append(issues, fhir.Issue{Severity: fhir.SeverityInformation, Code: fhir.IssueInformational,
			Diagnostics: "the resource is valid for " + mode})
	}
	return s.writeJSON(c, http.StatusOK, fhir.NewOperationOutcome(issues...))
}

// validateWrite checks a resource as create or update would, the protocol
// checks included (against the stored data).
func (s *Server) validateWrite(ctx context.Context, body []byte, typ, id, mode string) []fhir.Issue {
	res, issues, err := s.check(body, typ, fhir.KindInvalid)
	if err != nil {
		return issuesOf(err)
	}
	target := cmp.Or(id, res.ID, "validate")
	rows, err := s.mapper.Map(typ, target, res.Raw())
	if err != nil {
		return issuesOf(err)
	}
	fs, err := s.checkProtocol(s.store.Facts(ctx), typ, target, rows)
	if err != nil {
		return append(issues, issuesOf(err)...)
	}
	issues = append(issues, findingIssues(fs)...)
	if mode == "update" {
		switch {
		case res.ID == "":
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.IssueRequired, Diagnostics: "an update needs the resource's id", Expression: []string{typ + ".id"}})
		case id != "" && res.ID != id:
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.IssueInvalid, Diagnostics: "the resource's id differs from the URL's", Expression: []string{typ + ".id"}})
		}
	}
	return issues
}

// validateDelete checks that a resource could be deleted: it exists.
func (s *Server) validateDelete(c echo.Context, typ, id string) []fhir.Issue {
	if id == "" {
		return []fhir.Issue{{Severity: fhir.SeverityError, Code: fhir.IssueRequired, Diagnostics: "mode delete needs the resource's id in the URL"}}
	}
	v, err := s.store.Read(c.Request().Context(), typ, id)
	switch {
	case store.Code(err) == store.ENotFound:
		return []fhir.Issue{{Severity: fhir.SeverityError, Code: fhir.IssueNotFound, Diagnostics: typ + "/" + id + " does not exist"}}
	case err != nil:
		return issuesOf(err)
	case v.Deleted:
		return []fhir.Issue{{Severity: fhir.SeverityWarning, Code: fhir.IssueDeleted, Diagnostics: typ + "/" + id + " is deleted already"}}
	}
	return nil
}

// issuesOf returns the issues of an error, for an OperationOutcome inside
// a response ($validate, a Bundle entry); an internal error shows none of
// its details.
func issuesOf(err error) []fhir.Issue {
	if fe := asFHIRError(err); fe.Kind != fhir.KindInternal {
		return fe.Issues
	}
	return []fhir.Issue{{Severity: fhir.SeverityFatal, Code: fhir.IssueException, Diagnostics: "internal error"}}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
