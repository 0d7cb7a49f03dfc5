package server

import (
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
)

// contentTypeFHIR is the content type of every FHIR response.
const contentTypeFHIR = "application/fhir+json; charset=utf-8"

// jsonFormats are the _format values and media types that mean FHIR JSON.
var jsonFormats = map[string]bool{
	"json": true, "application/json": true, "application/fhir+json": true, "application/json+fhir": true,
}

// negotiate checks, before a handler runs, that the client accepts JSON
// (_format, else Accept: 406 otherwise) and that a body is FHIR JSON (415
// otherwise). A fhirVersion parameter must name 4.0.
func negotiate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		// A + in an unencoded query arrives as a space: application/fhir json.
		if f := strings.ReplaceAll(r.URL.Query().Get("_format"), " ", "+"); f != "" {
			mt, params, err := mime.ParseMediaType(f)
			if err != nil && !jsonFormats[f] || err == nil && (!jsonFormats[mt] || !fhirVersionOK(params)) {
				return fhir.Errorf(fhir.KindNotAcceptable, fhir.IssueNotSupported, "",
					"_format=%s is not supported: this server speaks FHIR R4 JSON (json, application/fhir+json)", f)
			}
		} else if accept := r.Header.Get(echo.HeaderAccept); accept != "" && !acceptsJSON(accept) {
			return fhir.Errorf(fhir.KindNotAcceptable, fhir.IssueNotSupported, "",
				"Accept: %s is not supported: this server answers in FHIR R4 JSON (application/fhir+json)", accept)
		}
		if strings.HasSuffix(c.Path(), "/_search") {
			if ct := r.Header.Get(echo.HeaderContentType); ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationForm) {
				return fhir.Errorf(fhir.KindUnsupportedMediaType, fhir.IssueNotSupported, "",
					"Content-Type %s is not supported: send search parameters as application/x-www-form-urlencoded", ct)
			}
		} else if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			ct := r.Header.Get(echo.HeaderContentType)
			mt, params, err := mime.ParseMediaType(ct)
			patch := r.Method == http.MethodPatch && mt == "application/json-patch+json"
			if err != nil || !jsonFormats[mt] && !patch || !fhirVersionOK(params) || !charsetOK(params) {
				if ct == "" {
					ct = "none"
				}
				return fhir.Errorf(fhir.KindUnsupportedMediaType, fhir.IssueNotSupported, "",
					"Content-Type %s is not supported: send FHIR R4 JSON as application/fhir+json", ct)
			}
		}
		return next(c)
	}
}

// acceptsJSON reports whether an Accept header admits FHIR JSON.
func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if params["q"] == "0" || params["q"] == "0.0" || params["q"] == "0.00" || params["q"] == "0.000" {
			continue
		}
		if (mt == "*/*" || mt == "application/*" || jsonFormats[mt]) && fhirVersionOK(params) {
			return true
		}
	}
	return false
}

func fhirVersionOK(params map[string]string) bool {
	v, ok := params["fhirversion"]
	return !ok || v == "4.0" || v == "4.0.1"
}

func charsetOK(params map[string]string) bool {
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// The formats of a tabular answer (analytics and flat tables).
const (
	formatJSON    = "json"
	formatCSV     = "csv"
	formatNDJSON  = "ndjson"
	formatParquet = "parquet"
)

// tabularFormats maps the _format values and media types of tabular
// answers to their format.
var tabularFormats = map[string]string{
	"json": formatJSON, "application/json": formatJSON, "application/fhir+json": formatJSON, "application/json+fhir": formatJSON,
	"csv": formatCSV, "text/csv": formatCSV,
	"ndjson": formatNDJSON, "application/ndjson": formatNDJSON, "application/x-ndjson": formatNDJSON,
	"parquet": formatParquet, "application/vnd.apache.parquet": formatParquet,
}

// negotiateTabular is the middleware of the routes that answer in other
// formats than FHIR JSON: their handlers choose with tabularFormat.
func negotiateTabular(next echo.HandlerFunc) echo.HandlerFunc { return next }

// tabularFormat returns the format a request asks for among allowed (the
// first is the default): by _format, else by Accept. 406 when it asks for
// none of them.
func tabularFormat(c echo.Context, allowed ...string) (string, error) {
	if f := strings.ReplaceAll(c.QueryParam("_format"), " ", "+"); f != "" {
		mt, _, err := mime.ParseMediaType(f)
		if err != nil {
			mt = f
		}
		if format := tabularFormats[mt]; slices.Contains(allowed, format) {
			return format, nil
		}
		return "", fhir.Errorf(fhir.KindNotAcceptable, fhir.IssueNotSupported, "_format",
			"_format=%s is not supported here: use %s", f, strings.Join(allowed, ", "))
	}
	accept := c.Request().Header.Get(echo.HeaderAccept)
	if accept == "" {
		return allowed[0], nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if q, qerr := strconv.ParseFloat(params["q"], 64); err != nil || qerr == nil && q == 0 {
			continue
		}
		if mt == "*/*" {
			return allowed[0], nil
		}
		if format := tabularFormats[mt]; slices.Contains(allowed, format) {
			return format, nil
		}
	}
	return "", fhir.Errorf(fhir.KindNotAcceptable, fhir.IssueNotSupported, "",
		"Accept: %s is not supported here: use _format=%s", accept, strings.Join(allowed, ", "))
}
