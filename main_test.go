package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestServeAndShutdown runs the program as "go run ." would, with the
// database and address from the environment, serves a request, then stops
// it as SIGTERM would: it exits 0 and closes the database cleanly.
func TestServeAndShutdown(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "env.db")
	addr := "127.0.0.1:" + freePort(t)
	env := map[string]string{"INFUSION_DB": db, "INFUSION_ADDR": addr}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, &stderr) }()

	var resp *http.Response
	var err error
	for range 100 {
		if resp, err = http.Get("http://" + addr + "/healthz"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("server did not start: %v\n%s", err, &stderr)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	// A create is in flight when the stop comes: half its body is sent. It
	// must still be served, and only then may the program exit.
	body, err := os.ReadFile("testdata/resources/valid/observation-pain-after.json")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/Observation", pr)
	req.Header.Set("Content-Type", "application/fhir+json")
	inflight := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			inflight <- 0
			return
		}
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	pw.Write(body[:len(body)/2])
	time.Sleep(100 * time.Millisecond) // the request is being read
	cancel()
	time.Sleep(200 * time.Millisecond) // shutdown has begun
	select {
	case <-done:
		t.Fatal("the program exited with a request in flight")
	default:
	}
	pw.Write(body[len(body)/2:])
	pw.Close()
	if status := <-inflight; status != http.StatusCreated {
		t.Errorf("the request in flight got %d, want 201", status)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit status %d\n%s", code, &stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not shut down")
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the database named by INFUSION_DB was not used: %v", err)
	}
	if _, err := os.Stat(db + "-wal"); !os.IsNotExist(err) {
		t.Errorf("the write-ahead log is still there after shutdown: the database was not closed cleanly")
	}
	if !strings.Contains(stderr.String(), `"msg":"request"`) {
		t.Errorf("no structured request log:\n%s", &stderr)
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"help"}, 0, "usage: infusion"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "-max-body", "lots"}, 2, "is not a size"},
		{[]string{"-base-url", "fhir.example.org"}, 2, "not an absolute http(s) URL"},
		{[]string{"serve", "-h"}, 0, "-max-body"},
		{[]string{"reindex", "-db", filepath.Join(t.TempDir(), "reindex.db")}, 0, "search index rebuilt"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		code := run(context.Background(), tt.args, func(string) string { return "" }, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, want %d; output %q should contain %q", tt.args, code, tt.code, stderr.String(), tt.want)
		}
	}
}
