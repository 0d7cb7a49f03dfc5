package server

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/store"
)

// unsupportedType answers a request whose first path segment is not a
// stored type: 405 when another method serves that path (POST /metadata),
// else 404.
func (s *Server) unsupportedType(c echo.Context, t string) *fhir.Error {
	for _, r := range s.routes {
		if !r.perType() && r.path == "/"+t {
			return fhir.Errorf(fhir.KindMethodNotAllowed, fhir.IssueNotSupported, "",
				"%s is not supported on %s", c.Request().Method, c.Request().URL.Path)
		}
	}
	if s.validator.IsResourceType(t) {
		return fhir.Errorf(fhir.KindNotFound, fhir.IssueNotSupported, "",
			"resource type %s is not supported by this server (it stores %s)", t, strings.Join(storedTypes, ", "))
	}
	return fhir.Errorf(fhir.KindNotFound, fhir.IssueNotSupported, "", "%q is not a FHIR R4 resource type", t)
}

// readBody reads the request body, refusing more than MaxBody bytes.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	tooLarge := fhir.Errorf(fhir.KindTooLarge, fhir.IssueTooLong, "", "the request body is larger than the limit of %d bytes", s.cfg.MaxBody)
	if r.ContentLength > s.cfg.MaxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBody+1))
	if err != nil {
		return nil, fhir.Errorf(fhir.KindInvalid, fhir.IssueStructure, "", "reading the request body: %v", err)
	}
	if int64(len(body)) > s.cfg.MaxBody {
		return nil, tooLarge
	}
	if len(body) == 0 {
		return nil, fhir.Errorf(fhir.KindInvalid, fhir.IssueRequired, "", "the request has no body; send a %s resource", c.Param("type"))
	}
	return body, nil
}

// decode reads and checks the body as a resource of the URL's type.
func (s *Server) decode(c echo.Context) (*fhir.Resource, []fhir.Issue, error) {
	body, err := s.readBody(c)
	if err != nil {
		return nil, nil, err
	}
	return s.check(body, c.Param("type"), fhir.KindInvalid)
}

// pathID reads and checks the :id path parameter.
func pathID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !fhir.IsValidID(id) {
		return "", fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "", "%q is not a valid id (1 to 64 of A-Z, a-z, 0-9, - and .)", id)
	}
	return id, nil
}

// writeTarget reads what an update or delete aims at: the :id path
// parameter and If-Match (W/"3", "3" or 3; 0 when absent).
func writeTarget(c echo.Context) (id string, match int, err error) {
	if id, err = pathID(c); err != nil {
		return "", 0, err
	}
	h := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if h == "" {
		return id, 0, nil
	}
	match, err = strconv.Atoi(strings.Trim(strings.TrimPrefix(h, "W/"), `"`))
	if err != nil || match < 1 {
		return "", 0, fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "", `If-Match %q is not a version tag such as W/"3"`, h)
	}
	return id, match, nil
}

func (s *Server) create(c echo.Context) error {
	res, warnings, err := s.decode(c)
	if err != nil {
		return err
	}
	ch := &change{method: "POST", typ: res.Type, res: res, ifNoneExist: c.Request().Header.Get("If-None-Exist")}
	return s.respondChange(c, ch, warnings)
}

// update answers PUT /T/{id}, and PUT /T?search (a conditional update).
func (s *Server) update(c echo.Context) error {
	ch := &change{method: "PUT", typ: c.Param("type")}
	var err error
	if c.Param("id") != "" {
		if ch.id, ch.ifMatch, err = writeTarget(c); err != nil {
			return err
		}
	} else if ch.cond, err = condition(c); err != nil {
		return err
	}
	res, warnings, err := s.decode(c)
	if err != nil {
		return err
	}
	switch {
	case ch.cond != "":
		ch.id = res.ID // may be empty: the condition decides
	case res.ID == "":
		return fhir.Errorf(fhir.KindInvalid, fhir.IssueRequired, res.Type+".id", "an update needs the resource's id in the body, equal to %q in the URL", ch.id)
	case res.ID != ch.id:
		return fhir.Errorf(fhir.KindInvalid, fhir.IssueInvalid, res.Type+".id", "the body's id %q differs from the URL's id %q", res.ID, ch.id)
	}
	ch.res = res
	return s.respondChange(c, ch, warnings)
}

// patch answers PATCH /T/{id} with a JSON Patch or a FHIRPath Patch.
func (s *Server) patch(c echo.Context) error {
	ch := &change{method: "PATCH", typ: c.Param("type")}
	var err error
	if ch.id, ch.ifMatch, err = writeTarget(c); err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	if ch.makePatch, err = s.patcher(ch.typ, c.Request().Header.Get(echo.HeaderContentType), body); err != nil {
		return err
	}
	return s.respondChange(c, ch, nil)
}

// delete answers DELETE /T/{id}, and DELETE /T?search (a conditional delete).
func (s *Server) delete(c echo.Context) error {
	ch := &change{method: "DELETE", typ: c.Param("type")}
	var err error
	if c.Param("id") != "" {
		ch.id, ch.ifMatch, err = writeTarget(c)
	} else {
		ch.cond, err = condition(c)
	}
	if err != nil {
		return err
	}
	return s.respondChange(c, ch, nil)
}

// condition returns the search of a conditional update or delete; one is
// needed, since the URL names no resource.
func condition(c echo.Context) (string, error) {
	q := c.Request().URL.Query()
	for _, k := range []string{"_format", "_pretty"} {
		q.Del(k)
	}
	if len(q) == 0 {
		return "", fhir.Errorf(fhir.KindInvalid, fhir.IssueRequired, "",
			"%s /%s needs an id or search parameters (a conditional %s)", c.Request().Method, c.Param("type"), strings.ToLower(c.Request().Method))
	}
	return q.Encode(), nil
}

// respondChange applies a change in one write transaction and answers it.
func (s *Server) respondChange(c echo.Context, ch *change, warnings []fhir.Issue) error {
	if err := s.stageEarly(ch); err != nil {
		return err
	}
	var r result
	err := s.store.Update(c.Request().Context(), func(w store.Writer) error {
		var err error
		r, err = s.apply(w, ch)
		return err
	})
	if err != nil {
		return err
	}
	if ch.method == "DELETE" {
		if r.deleted != store.NotFound && r.count <= 1 {
			setVersionHeaders(c, r.version)
		}
		return s.writeJSON(c, http.StatusOK, fhir.NewOperationOutcome(fhir.Issue{
			Severity: fhir.SeverityInformation, Code: fhir.IssueInformational, Diagnostics: r.describe(ch)}))
	}
	return s.respondWritten(c, r.status, r.version, append(warnings, r.findings...), r.describe(ch))
}

func (s *Server) read(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	v, err := s.store.Read(c.Request().Context(), c.Param("type"), id)
	if err != nil {
		return err
	}
	return s.respondVersion(c, v, true)
}

func (s *Server) vread(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	vid, err := strconv.Atoi(c.Param("vid"))
	if err != nil || vid < 1 {
		return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "", "%q is not a version id (a positive whole number)", c.Param("vid"))
	}
	v, err := s.store.VRead(c.Request().Context(), c.Param("type"), id, vid)
	if err != nil {
		return err
	}
	return s.respondVersion(c, v, false)
}

// respondVersion answers a read or vread: 410 for a delete, 304 when the
// client's copy is current (If-None-Match, If-Modified-Since), else the
// resource with ETag and Last-Modified.
func (s *Server) respondVersion(c echo.Context, v store.Version, current bool) error {
	setVersionHeaders(c, v)
	if v.Deleted {
		return gone(v)
	}
	if current && notModified(c.Request(), v) {
		return c.NoContent(http.StatusNotModified)
	}
	return s.writeJSON(c, http.StatusOK, v.Body)
}

// gone is the error of a read of a deleted resource (410).
func gone(v store.Version) error {
	return fhir.Errorf(fhir.KindGone, fhir.IssueDeleted, "", "%s/%s was deleted at %s (version %d)",
		v.Type, v.ID, fhir.FormatInstant(v.LastUpdated), v.VersionID)
}

// notModified reports whether a conditional read may answer 304.
func notModified(r *http.Request, v store.Version) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, tag := range strings.Split(inm, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.Trim(strings.TrimPrefix(tag, "W/"), `"`) == itoa(v.VersionID) {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get(echo.HeaderIfModifiedSince); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !v.LastUpdated.Truncate(time.Second).After(t)
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }

// newID returns a server-assigned id: a UUID, time-ordered (version 7) so
// that new rows land together in the indexes.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
