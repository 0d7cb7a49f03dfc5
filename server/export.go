package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/server/bulk"
	"infusion/store"
)

// The Bulk Data paths beside the kick-offs (GET /$export, GET
// /Patient/$export): a job's status, and its files.
const (
	exportStatusPath  = "/$export-status/"
	exportFilePath    = "/$export-file/"
	contentTypeNDJSON = "application/fhir+ndjson"
)

// exportKickOff answers GET /$export and GET /Patient/$export: it checks the
// request, records a job and answers 202 with the job's status URL in
// Content-Location.
func (s *Server) exportKickOff(c echo.Context) error {
	if !preferAsync(c) {
		return fhir.Errorf(fhir.KindInvalid, fhir.IssueRequired, "",
			"an export runs asynchronously: send the header Prefer: respond-async")
	}
	req, err := s.bulk.Parse(c.QueryParams(), c.Path() != "/$export", strings.EqualFold(prefer(c)["handling"], "lenient"))
	if err != nil {
		return err
	}
	req.URL = s.baseURL(c) + c.Request().URL.RequestURI()
	id, err := s.bulk.Start(c.Request().Context(), req)
	if errors.Is(err, bulk.ErrBusy) {
		c.Response().Header().Set("Retry-After", "60")
		return fhir.Errorf(fhir.KindUnavailable, fhir.IssueTransient, "", "too many exports are waiting; try again later")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Location", s.baseURL(c)+exportStatusPath+id)
	return s.writeJSON(c, http.StatusAccepted, fhir.NewOperationOutcome(fhir.Issue{Severity: fhir.SeverityInformation,
		Code: fhir.IssueInformational, Diagnostics: fmt.Sprintf("export %s accepted: poll its status at %s", id, exportStatusPath+id)}))
}

// preferAsync reports whether the Prefer header asks for respond-async.
func preferAsync(c echo.Context) bool {
	_, ok := prefer(c)["respond-async"]
	return ok
}

// exportStatus answers GET /$export-status/{id}: 202 with X-Progress while
// the job runs, 200 with the manifest when it is done, 500 with an
// OperationOutcome when it failed, 404 when it is unknown, cancelled or
// expired.
func (s *Server) exportStatus(c echo.Context) error {
	st, err := s.bulk.Status(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	h := c.Response().Header()
	switch st.Status {
	case store.ExportCompleted:
		h.Set("Expires", st.Expires.UTC().Format(http.TimeFormat))
		base := s.baseURL(c)
		return c.JSON(http.StatusOK, st.Manifest(func(name string) string { return base + exportFilePath + st.ID + "/" + name }))
	case store.ExportFailed:
		return s.writeJSON(c, http.StatusInternalServerError, fhir.NewOperationOutcome(fhir.Issue{Severity: fhir.SeverityFatal,
			Code: fhir.IssueException, Diagnostics: "the export failed: " + st.Error}))
	}
	progress := "queued"
	if st.Status == store.ExportInProgress {
		progress = "in progress: " + strconv.FormatInt(st.Written, 10) + " resources written"
		if st.Total > 0 {
			progress = fmt.Sprintf("%d%% (%d of at most %d resources written)", min(99, st.Written*100/st.Total), st.Written, st.Total)
		}
	}
	h.Set("X-Progress", progress)
	h.Set("Retry-After", "1")
	return c.NoContent(http.StatusAccepted)
}

// exportCancel answers DELETE /$export-status/{id}: the job stops and its
// files go; 202, then 404 on later polls.
func (s *Server) exportCancel(c echo.Context) error {
	id := c.Param("id")
	if err := s.bulk.Cancel(c.Request().Context(), id); err != nil {
		return err
	}
	return s.writeJSON(c, http.StatusAccepted, fhir.NewOperationOutcome(fhir.Issue{Severity: fhir.SeverityInformation,
		Code: fhir.IssueInformational, Diagnostics: "export " + id + " cancelled and its files deleted"}))
}

// exportFile answers GET /$export-file/{id}/{name}: one NDJSON output file
// of a completed job, with range requests.
func (s *Server) exportFile(c echo.Context) error {
	path, err := s.bulk.File(c.Request().Context(), c.Param("id"), c.Param("name"))
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) { // deleted meanwhile
		return &store.Error{Code: store.ENotFound, Message: "export file " + c.Param("name") + " is gone"}
	}
	if err != nil {
		return fmt.Errorf("opening export file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening export file: %w", err)
	}
	c.Response().Header().Set(echo.HeaderContentType, contentTypeNDJSON)
	http.ServeContent(c.Response(), c.Request(), info.Name(), info.ModTime(), f)
	return nil
}
