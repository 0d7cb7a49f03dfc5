package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"infusion/fhir/fhirtest"
	"infusion/server"
)

// testServer is the real server over a real SQLite file in a temporary
// folder, behind an httptest.Server.
type testServer struct {
	*httptest.Server
	app *server.Server
}

func newTestServer(tb testing.TB, cfg server.Config) *testServer {
	tb.Helper()
	if cfg.DBPath == "" {
		cfg.DBPath = filepath.Join(tb.TempDir(), "infusion.db")
	}
	app, err := server.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Server: httptest.NewServer(app.Handler()), app: app}
	tb.Cleanup(func() {
		ts.Close()
		if err := app.Close(); err != nil {
			tb.Error(err)
		}
	})
	return ts
}

// response is an HTTP response with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic map.
func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

// issueExpressions returns the expressions of an OperationOutcome's issues.
func (r response) issueExpressions(tb testing.TB) []string {
	tb.Helper()
	var oo struct {
		ResourceType string
		Issue        []struct{ Expression []string }
	}
	if err := json.Unmarshal(r.body, &oo); err != nil || oo.ResourceType != "OperationOutcome" {
		tb.Fatalf("want an OperationOutcome, got %s", r.body)
	}
	var out []string
	for _, is := range oo.Issue {
		out = append(out, is.Expression...)
	}
	return out
}

// do sends a request (headers as "Name: value" strings) and checks that any
// JSON body it gets back is a valid R4 resource.
func (ts *testServer) do(tb testing.TB, method, path, body string, headers ...string) response {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: data}
	if len(data) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") {
		fhirtest.CheckResource(tb, data)
	}
	return r
}

// create posts a resource and returns its id.
func (ts *testServer) create(tb testing.TB, typ, body string) string {
	tb.Helper()
	r := ts.do(tb, http.MethodPost, "/"+typ, body)
	if r.status != http.StatusCreated {
		tb.Fatalf("create %s: %d %s", typ, r.status, r.body)
	}
	id, _ := r.json(tb)["id"].(string)
	return id
}

// example reads a file of testdata/resources.
func example(tb testing.TB, name string) string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "resources", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// withID sets the id of a resource's JSON.
func withID(tb testing.TB, body, id string) string {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		tb.Fatal(err)
	}
	m["id"], _ = json.Marshal(id)
	out, _ := json.Marshal(m)
	return string(out)
}

// historyCount returns the number of versions in the system history.
func (ts *testServer) historyCount(tb testing.TB) int {
	tb.Helper()
	r := ts.do(tb, http.MethodGet, "/_history?_count=1000", "")
	entries, _ := r.json(tb)["entry"].([]any)
	return len(entries)
}
