// Package servertest starts this project's server for tests of other
// packages: the real handler over a SQLite file in a temporary folder.
package servertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"infusion/server"
)

// Start serves a new server until the test ends; wrap, when not nil,
// wraps its handler (to break it on purpose, for instance).
func Start(t testing.TB, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	s, err := server.New(context.Background(), server.Config{DBPath: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := s.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}
