package kit_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"infusion/conformance/kit"
	"infusion/server/servertest"
)

// moreIDs are the checks rest_more.go and the new errors cases add.
var moreIDs = []string{
	"rest.read.if-modified-since", "rest.create.conditional", "rest.update.conditional",
	"rest.delete.conditional", "rest.patch.json-patch", "rest.validate.valid", "rest.validate.invalid",
}

func TestMoreAgainstThisServer(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	rep := run(t, kit.Options{Base: ts.URL, Suites: []string{"rest", "errors"}})
	for _, c := range rep.Checks {
		if c.Status == kit.Fail {
			t.Errorf("%s failed: %s", c.Name(), c.Reason)
		}
		if c.Status == kit.Skip && c.Reason == "" {
			t.Errorf("%s skipped without a reason", c.Name())
		}
	}
	for _, typ := range testedTypes {
		for _, id := range moreIDs {
			if !slices.ContainsFunc(rep.Checks, func(c kit.Check) bool { return c.ID == id && c.Resource == typ && c.Status == kit.Pass }) {
				t.Errorf("%s [%s] did not pass", id, typ)
			}
		}
	}
	// The server is on 127.0.0.1: the oversized body is sent (17 MiB, over
	// this server's 16 MiB default).
	for _, id := range []string{"errors.wrong-type.status", "errors.wrong-type.outcome", "errors.oversized-body.status", "errors.oversized-body.outcome"} {
		if !slices.ContainsFunc(rep.Checks, func(c kit.Check) bool { return c.ID == id && c.Status == kit.Pass }) {
			t.Errorf("%s did not pass", id)
		}
	}
	if len(rep.CleanupErrors) > 0 {
		t.Errorf("cleanup errors %v", rep.CleanupErrors)
	}
	for _, typ := range testedTypes {
		if n := tagged(t, ts.URL, typ, rep.RunID); n != 0 {
			t.Errorf("%d %s resources of the run remain after the cleanup", n, typ)
		}
	}
}

// outcomeJSON is a minimal OperationOutcome.
const outcomeJSON = `{"resourceType":"OperationOutcome","issue":[{"severity":"%s","code":"%s","diagnostics":"broken on purpose"}]}`

func answer(w http.ResponseWriter, code int, severity, issue string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(code)
	fmt.Fprintf(w, outcomeJSON, severity, issue)
}

// Servers broken in one way each: the kit reports exactly that check
// failed, on each tested type.
func TestMoreBrokenServers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		check string
		wrap  func(h http.Handler) http.Handler
	}{
		{"conditional create makes a duplicate", "rest.create.conditional", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("If-None-Exist")
				h.ServeHTTP(w, r)
			})
		}},
		{"PATCH answers 500", "rest.patch.json-patch", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPatch {
					answer(w, http.StatusInternalServerError, "fatal", "exception")
					return
				}
				h.ServeHTTP(w, r)
			})
		}},
		{"$validate finds everything valid", "rest.validate.invalid", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/$validate") {
					answer(w, http.StatusOK, "information", "informational")
					return
				}
				h.ServeHTTP(w, r)
			})
		}},
		{"If-Modified-Since ignored", "rest.read.if-modified-since", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("If-Modified-Since")
				h.ServeHTTP(w, r)
			})
		}},
		{"conditional delete deletes nothing", "rest.delete.conditional", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete && r.URL.RawQuery != "" {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				h.ServeHTTP(w, r)
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := servertest.Start(t, tc.wrap)
			rep := run(t, kit.Options{Base: ts.URL, Suites: []string{"rest"}})
			var want []string
			for _, typ := range testedTypes {
				want = append(want, tc.check+" ["+typ+"]")
			}
			slices.Sort(want)
			if got := failed(rep); !slices.Equal(got, want) {
				t.Errorf("failed checks:\n got %v\nwant %v", got, want)
			}
			for _, c := range rep.Checks {
				if c.Status == kit.Fail && (len(c.Exchanges) == 0 || c.Reason == "") {
					t.Errorf("%s failed without the exchanges or a reason", c.Name())
				}
			}
		})
	}
}

// dialTo is a client that sends every request to addr, whatever the host
// of the URL: the kit sees a remote base URL.
func dialTo(addr string) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestOversizedBody(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, nil)
	t.Run("remote server, limit unknown: skipped", func(t *testing.T) {
		rep := run(t, kit.Options{Base: "http://fhir.example.test", Client: dialTo(ts.Listener.Addr().String()), Suites: []string{"errors"}})
		for _, c := range rep.Checks {
			if strings.HasPrefix(c.ID, "errors.oversized-body.") && (c.Status != kit.Skip || !strings.Contains(c.Reason, "does not know the request body limit")) {
				t.Errorf("%s: %s %q, want a skip naming the unknown limit", c.Name(), c.Status, c.Reason)
			}
		}
		if f := failed(rep); len(f) > 0 {
			t.Errorf("failed: %v", f)
		}
	})
	t.Run("limit given below the server's: 2 MiB accepted, reported", func(t *testing.T) {
		rep := run(t, kit.Options{Base: ts.URL, BodyLimit: 1 << 20, Suites: []string{"errors"}})
		if got, want := failed(rep), []string{"errors.oversized-body.outcome [MedicationRequest]", "errors.oversized-body.status [MedicationRequest]"}; !slices.Equal(got, want) {
			t.Errorf("failed checks:\n got %v\nwant %v", got, want)
		}
		if rep.ShallFailed() {
			t.Error("413 is a SHOULD: the run must not fail")
		}
		// What the server accepted anyway is deleted at the end.
		if n := tagged(t, ts.URL, "MedicationRequest", rep.RunID); n != 0 || len(rep.CleanupErrors) > 0 {
			t.Errorf("%d resources remain, cleanup errors %v", n, rep.CleanupErrors)
		}
	})
}

// untracked hides what a successful create answers (no Location, no
// body), so that the kit cannot track what it created.
func untracked(code int, h http.Header) bool {
	if code != http.StatusCreated && code != http.StatusOK {
		return false
	}
	h.Del("Location")
	h.Del("Content-Length")
	h.Del("Content-Type")
	return true
}

// The cleanup's sweep by tag follows next links: with pages of one
// resource, it still finds every Observation the kit could not track.
func TestSweepFollowsPaging(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	pages := 0
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if r.Method == http.MethodGet && q.Get("_tag") != "" && q.Get("_count") == "100" {
				q.Set("_count", "1")
				r.URL.RawQuery = q.Encode()
			}
			if r.Method == http.MethodGet && q.Get("_tag") != "" && r.URL.Path == "/Observation" {
				mu.Lock()
				pages++
				mu.Unlock()
			}
			if r.Method == http.MethodPost && r.URL.Path == "/Observation" {
				h.ServeHTTP(&bodyless{ResponseWriter: w, drop: untracked}, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	rep := run(t, kit.Options{Base: ts.URL, Suites: []string{"rest"}})
	if n := tagged(t, ts.URL, "Observation", rep.RunID); n != 0 {
		t.Errorf("%d Observations of the run remain after the cleanup: the sweep did not follow the pages", n)
	}
	if pages < 3 {
		t.Errorf("the sweep read %d pages of Observations", pages)
	}
	tracked := 0
	for _, c := range rep.Created {
		if strings.HasPrefix(c, "Observation/") {
			tracked++
		}
	}
	if tracked < 3 {
		t.Errorf("the sweep found %d Observations, want at least 3", tracked)
	}
	if len(rep.CleanupErrors) > 0 {
		t.Errorf("cleanup errors %v", rep.CleanupErrors)
	}
}
