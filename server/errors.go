package server

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/store"
)

// statusOf is the one table from error kind to HTTP status.
var statusOf = map[fhir.Kind]int{
	fhir.KindInvalid:              http.StatusBadRequest,
	fhir.KindNotFound:             http.StatusNotFound,
	fhir.KindGone:                 http.StatusGone,
	fhir.KindMethodNotAllowed:     http.StatusMethodNotAllowed,
	fhir.KindConflict:             http.StatusConflict,
	fhir.KindPreconditionFailed:   http.StatusPreconditionFailed,
	fhir.KindTooLarge:             http.StatusRequestEntityTooLarge,
	fhir.KindUnsupportedMediaType: http.StatusUnsupportedMediaType,
	fhir.KindNotAcceptable:        http.StatusNotAcceptable,
	fhir.KindUnavailable:          http.StatusServiceUnavailable,
	fhir.KindUnprocessable:        http.StatusUnprocessableEntity,
	fhir.KindInternal:             http.StatusInternalServerError,
}

// kindOfStoreCode turns store errors into error kinds.
var kindOfStoreCode = map[store.ErrorCode]failure{
	store.ENotFound:     {fhir.KindNotFound, fhir.IssueNotFound},
	store.EConflict:     {fhir.KindConflict, fhir.IssueConflict},
	store.EPrecondition: {fhir.KindPreconditionFailed, fhir.IssueConflict},
	store.EInvalid:      {fhir.KindInvalid, fhir.IssueValue},
	store.EUnsupported:  {fhir.KindInvalid, fhir.IssueNotSupported},
}

// failure is the error kind and issue type another error becomes.
type failure struct {
	kind fhir.Kind
	code fhir.IssueType
}

// kindOfStatus turns the statuses Echo itself answers with (no route, wrong
// method, body too large) into error kinds.
var kindOfStatus = map[int]failure{
	http.StatusNotFound:              {fhir.KindNotFound, fhir.IssueNotFound},
	http.StatusMethodNotAllowed:      {fhir.KindMethodNotAllowed, fhir.IssueNotSupported},
	http.StatusRequestEntityTooLarge: {fhir.KindTooLarge, fhir.IssueTooLong},
	http.StatusBadRequest:            {fhir.KindInvalid, fhir.IssueInvalid},
	http.StatusUnsupportedMediaType:  {fhir.KindUnsupportedMediaType, fhir.IssueNotSupported},
}

// handleError is Echo's error handler: every error becomes an
// OperationOutcome with the status of its kind. An internal error is logged
// with its cause and answered with the request id only.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	fe := asFHIRError(err)
	var he *echo.HTTPError
	switch {
	case fe.Kind != fhir.KindInternal:
	case errors.As(err, &he):
		k, ok := kindOfStatus[he.Code]
		if !ok {
			k.kind, k.code = fhir.KindInternal, fhir.IssueException
		}
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && k.kind != fhir.KindInternal {
			msg = m
		}
		if he.Code == http.StatusNotFound {
			msg = "no such endpoint: " + c.Request().Method + " " + c.Request().URL.Path
		}
		if he.Code == http.StatusMethodNotAllowed {
			msg = c.Request().Method + " is not supported on " + c.Request().URL.Path
			// /Patient matches /:type (POST) but Patient is not stored here.
			if t, _, _ := strings.Cut(strings.TrimPrefix(c.Request().URL.Path, "/"), "/"); !s.types[t] {
				fe = s.unsupportedType(c, t)
			}
		}
		if fe.Kind == fhir.KindInternal {
			fe = fhir.Errorf(k.kind, k.code, "", "%s", msg)
			fe.Err = he.Internal
		}
	}
	status := statusOf[fe.Kind]
	issues := fe.Issues
	if fe.Err != nil && fe.Kind != fhir.KindInternal {
		s.log.LogAttrs(c.Request().Context(), slog.LevelWarn, "request failed",
			slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)), slog.String("error", fe.Err.Error()))
	}
	if fe.Kind == fhir.KindInternal {
		id := c.Response().Header().Get(echo.HeaderXRequestID)
		s.log.LogAttrs(c.Request().Context(), slog.LevelError, "internal error",
			slog.String("request_id", id), slog.String("error", err.Error()))
		issues = []fhir.Issue{{Severity: fhir.SeverityFatal, Code: fhir.IssueException,
			Diagnostics: "internal error; the server log has the details under request id " + id}}
	}
	if err := s.writeJSON(c, status, fhir.NewOperationOutcome(issues...)); err != nil {
		s.log.Error("writing an error response", slog.String("error", err.Error()))
	}
}

// asFHIRError turns any error into a *fhir.Error: its own, a store error by
// its code, or an internal error carrying it.
func asFHIRError(err error) *fhir.Error {
	var fe *fhir.Error
	if errors.As(err, &fe) {
		return fe
	}
	var se *store.Error
	if errors.As(err, &se) {
		if k, ok := kindOfStoreCode[se.Code]; ok {
			return fhir.Errorf(k.kind, k.code, "", "%s", se.Message)
		}
	}
	return &fhir.Error{Kind: fhir.KindInternal, Err: err}
}
