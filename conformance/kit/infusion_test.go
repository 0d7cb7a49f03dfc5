package kit_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"infusion/conformance/kit"
	"infusion/server/servertest"
)

func TestInfusionSuiteAgainstThisServer(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	rep := run(t, kit.Options{Base: ts.URL, Suites: []string{kit.SuiteInfusion}})
	roundTrips := 0
	for _, c := range rep.Checks {
		if c.Suite != kit.SuiteInfusion || !strings.HasPrefix(c.ID, "infusion.") {
			t.Errorf("%s is not an infusion check", c.Name())
		}
		if c.Status != kit.Pass {
			t.Errorf("%s: %s %s", c.Name(), c.Status, c.Reason)
		}
		if strings.HasPrefix(c.ID, "infusion.roundtrip.") {
			roundTrips++
		}
	}
	if roundTrips != 14 {
		t.Errorf("%d round-trip checks, want 14", roundTrips)
	}
	for _, id := range []string{"infusion.finding.gabapentin-iv", "infusion.course.gabapentin-iv"} {
		if !slices.ContainsFunc(rep.Checks, func(c kit.Check) bool { return c.ID == id && c.Status == kit.Pass }) {
			t.Errorf("%s did not pass", id)
		}
	}
	if rep.ShallFailed() || len(rep.CleanupErrors) > 0 {
		t.Errorf("ShallFailed %v, cleanup errors %v", rep.ShallFailed(), rep.CleanupErrors)
	}
	for _, typ := range testedTypes {
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
			t.Errorf("%d %s resources of the run remain after the cleanup", n, typ)
		}
	}
}

// rewriteReads wraps a handler: the body of every 200 answer to a GET of
// one resource of type typ goes through edit.
func rewriteReads(typ string, edit func([]byte) []byte) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
			if r.Method != http.MethodGet || len(parts) != 2 || parts[0] != typ {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if rec.Code == http.StatusOK {
				body = edit(body)
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
}

func TestInfusionSuiteDecimalRewritten(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, rewriteReads("MedicationAdministration", func(b []byte) []byte {
		return bytes.ReplaceAll(b, []byte(`"value":0.50`), []byte(`"value":0.5`))
	}))
	rep := run(t, kit.Options{Base: ts.URL, Suites: []string{kit.SuiteInfusion}})
	want := []string{
		"infusion.roundtrip.ketamine-completed [MedicationAdministration]",
		"infusion.roundtrip.ketamine-stopped-nausea [MedicationAdministration]",
	}
	expectFailures(t, rep, want, func(c kit.Check) bool {
		return strings.Contains(c.Reason, "sent 0.50, got 0.5") && len(c.Exchanges) >= 2
	})
}

func TestInfusionSuiteExtensionDropped(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, rewriteReads("MedicationRequest", func(b []byte) []byte {
		i := bytes.Index(b, []byte(`"_authoredOn":`))
		if i < 0 {
			return b
		}
		// drop the "_authoredOn":{...}, member
		depth, j := 0, i+len(`"_authoredOn":`)
		for ; j < len(b); j++ {
			if b[j] == '{' {
				depth++
			} else if b[j] == '}' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		end := j + 1
		if end < len(b) && b[end] == ',' {
			end++
		}
		return append(b[:i:i], b[end:]...)
	}))
	rep := run(t, kit.Options{Base: ts.URL, Suites: []string{kit.SuiteInfusion}})
	want := []string{"infusion.roundtrip.ketamine-crps [MedicationRequest]"}
	expectFailures(t, rep, want, func(c kit.Check) bool { return strings.Contains(c.Reason, "_authoredOn: sent an object, got nothing") })
}

func TestInfusionFindingsSkippedWithoutCourse(t *testing.T) {
	t.Parallel()
	ts := withMetadata(t, func(cs []byte) []byte {
		return bytes.ReplaceAll(cs, []byte(kit.CourseDefinition), []byte("https://elsewhere.example.org/OperationDefinition/course"))
	})
	rep := run(t, kit.Options{Base: ts.URL, Suites: []string{kit.SuiteInfusion}})
	for _, c := range rep.Checks {
		switch c.ID {
		case "infusion.finding.gabapentin-iv", "infusion.course.gabapentin-iv":
			if c.Status != kit.Skip || !strings.Contains(c.Reason, "does not declare the $course operation") {
				t.Errorf("%s: %s %s", c.Name(), c.Status, c.Reason)
			}
		default:
			if c.Status != kit.Pass {
				t.Errorf("%s: %s %s", c.Name(), c.Status, c.Reason)
			}
		}
	}
}
