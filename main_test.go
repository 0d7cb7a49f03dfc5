package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"infusion/fhir/fhirtest"
	"infusion/mapping/synth"
	"infusion/server"
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

// TestSynthFlags checks that bad synth flags end with exit status 2 and a
// message naming the flag.
func TestSynthFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"neither -out nor -url", []string{"-patients", "3"}, "one of -out and -url is required"},
		{"both -out and -url", []string{"-out", out, "-url", "http://localhost:1"}, "-out and -url cannot be used together"},
		{"response rate above 1", []string{"-out", out, "-response", "ketamine=1.5"}, "-response: response rate of ketamine: 1.5 is not between 0 and 1"},
		{"response not class=rate", []string{"-out", out, "-response", "ketamine"}, `-response: "ketamine" is not class=rate`},
		{"response not a number", []string{"-out", out, "-response", "lidocaine=lots"}, `-response: rate of lidocaine: "lots" is not a number`},
		{"response unknown class", []string{"-out", out, "-response", "aspirin=0.5"}, `-response: unknown drug class "aspirin"`},
		{"nausea above 1", []string{"-out", out, "-nausea", "1.2"}, "-nausea: 1.2 is not a rate between 0 and 1"},
		{"stop below 0", []string{"-out", out, "-stop", "-0.1"}, "-stop: -0.1 is not a rate between 0 and 1"},
		{"dizziness not a number", []string{"-out", out, "-dizziness", "often"}, "-dizziness"},
		{"headache above 1", []string{"-out", out, "-headache", "2"}, "-headache: 2 is not a rate"},
		{"dissociation NaN", []string{"-out", out, "-dissociation", "NaN"}, "-dissociation: NaN is not a rate"},
		{"home above 1", []string{"-out", out, "-home", "1.01"}, "-home: 1.01 is not a rate"},
		{"no patients", []string{"-out", out, "-patients", "0"}, "-patients: 0, want at least 1"},
		{"batch of 0", []string{"-url", "http://localhost:1", "-batch", "0"}, "-batch: 0, want at least 1"},
		{"url not absolute", []string{"-url", "localhost:8080"}, `-url: "localhost:8080" is not an absolute http(s) URL`},
		{"bad start", []string{"-out", out, "-start", "2025-13-01"}, `-start: "2025-13-01" is not a date`},
		{"unknown flag", []string{"-out", out, "-vomiting", "0.1"}, "-vomiting"},
		{"argument left", []string{"-out", out, "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), append([]string{"synth"}, tt.args...), func(string) string { return "" }, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "usage: infusion synth") {
				t.Errorf("exit %d, want 2; output should contain %q and the usage:\n%s", code, tt.want, &stderr)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused command made %s", out)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"synth", "-h"}, func(string) string { return "" }, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "-dissociation") {
		t.Errorf("synth -h: exit %d\n%s", code, &stderr)
	}
}

// runSynth runs the synth command and fails the test unless it exits 0.
func runSynth(t *testing.T, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	if code := run(context.Background(), append([]string{"synth"}, args...), func(string) string { return "" }, &stderr); code != 0 {
		t.Fatalf("synth %v: exit %d\n%s", args, code, &stderr)
	}
	return stderr.String()
}

// readDir returns the files of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}

// TestSynthOut writes NDJSON twice with the same seed and flags (the same
// bytes) and once with another seed (other bytes), and validates every line
// against the R4 schema.
func TestSynthOut(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"-patients", "40", "-nausea", "0.3", "-response", "ketamine=0.8,lidocaine=0.2", "-home", "0.5", "-quiet"}
	summary := runSynth(t, append([]string{"-out", filepath.Join(dir, "a"), "-seed", "9"}, flags...)...)
	runSynth(t, append([]string{"-out", filepath.Join(dir, "b"), "-seed", "9"}, flags...)...)
	runSynth(t, append([]string{"-out", filepath.Join(dir, "c"), "-seed", "10"}, flags...)...)
	a, b, c := readDir(t, filepath.Join(dir, "a")), readDir(t, filepath.Join(dir, "b")), readDir(t, filepath.Join(dir, "c"))
	want := []string{"MedicationAdministration.ndjson", "MedicationRequest.ndjson", "Observation.ndjson"}
	if fmt.Sprint(slices.Sorted(maps.Keys(a))) != fmt.Sprint(want) {
		t.Fatalf("files %v, want %v", slices.Sorted(maps.Keys(a)), want)
	}
	total := 0
	for _, name := range want {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
		if bytes.Equal(a[name], c[name]) {
			t.Errorf("%s is the same with another seed", name)
		}
		typ := strings.TrimSuffix(name, ".ndjson")
		lines := bytes.Split(bytes.TrimSuffix(a[name], []byte("\n")), []byte("\n"))
		for _, line := range lines {
			fhirtest.CheckResource(t, line)
			var head struct{ ResourceType string }
			if err := json.Unmarshal(line, &head); err != nil || head.ResourceType != typ {
				t.Fatalf("%s holds a %s", name, head.ResourceType)
			}
		}
		total += len(lines)
		if !strings.Contains(summary, fmt.Sprintf("%s %d", typ, len(lines))) {
			t.Errorf("summary %q does not count %d %s", summary, len(lines), typ)
		}
	}
	// Not a terminal: no progress bar, only the summary line.
	if !strings.HasPrefix(summary, fmt.Sprintf("synth: 40 patients, %d resources", total)) || strings.Count(summary, "\n") != 1 {
		t.Errorf("output %q, want one summary line", summary)
	}
	// The flags matter: without them, other data.
	runSynth(t, "-out", filepath.Join(dir, "d"), "-seed", "9", "-patients", "40")
	if d := readDir(t, filepath.Join(dir, "d")); bytes.Equal(a["Observation.ndjson"], d["Observation.ndjson"]) {
		t.Error("-nausea, -response and -home changed nothing")
	}
}

// count returns the number of resources of a type in the server.
func count(t *testing.T, base, typ string) int {
	t.Helper()
	resp, err := http.Get(base + "/" + typ + "?_summary=count&_total=accurate")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct {
		Total *int `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != http.StatusOK || b.Total == nil {
		t.Fatalf("%s count: %d %v", typ, resp.StatusCode, err)
	}
	return *b.Total
}

// TestSynthURL sends generated patients to the server in transaction
// Bundles, twice (the second run changes no count), and compares the
// counts the server gives with what was generated.
func TestSynthURL(t *testing.T) {
	ctx := context.Background()
	s, err := server.New(ctx, server.Config{DBPath: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	const patients = 45
	flags := []string{"-patients", strconv.Itoa(patients), "-seed", "3", "-batch", "20", "-dissociation", "0.5", "-url", ts.URL + "/"}
	summary := runSynth(t, flags...)
	if !strings.Contains(summary, "3 bundles to "+ts.URL) {
		t.Errorf("summary %q: want 3 bundles (20 + 20 + 5 patients)", summary)
	}
	want := map[string]int{}
	rates := synth.DefaultRates()
	rates.Dissociation = 0.5
	g := synth.New(synth.Config{Patients: patients, Seed: 3, Rates: &rates})
	for i := range patients {
		for _, r := range g.Patient(i) {
			want[r.Type]++
		}
	}
	for round := 1; round <= 2; round++ {
		for _, typ := range synth.Types() {
			if got := count(t, ts.URL, typ); got != want[typ] {
				t.Errorf("run %d: %d %s stored, %d generated", round, got, typ, want[typ])
			}
		}
		if round == 1 {
			runSynth(t, flags...) // again: the same resources, new versions
		}
	}
	// A generated resource reads back, referring to a Patient the server
	// does not store.
	resp, err := http.Get(ts.URL + "/MedicationRequest?identifier=" + synth.OrderSystem + "|" + synth.OrderIdentifier(7))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"reference":"Patient/`+synth.PatientID(7)+`"`) || !strings.Contains(string(body), `"versionId":"2"`) {
		t.Errorf("order of patient 7 after two runs: %s", body)
	}
}

// TestSynthURLFailure checks that an answer other than 2xx ends the command
// with exit status 1 and the OperationOutcome's diagnostics, from the real
// server (a Bundle larger than it accepts) and from one that refuses
// everything.
func TestSynthURLFailure(t *testing.T) {
	ctx := context.Background()
	s, err := server.New(ctx, server.Config{DBPath: filepath.Join(t.TempDir(), "db"), MaxEntries: 50})
	if err != nil {
		t.Fatal(err)
	}
	real := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		real.Close()
		s.Close()
	})
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/fhir" || r.Header.Get("Content-Type") != "application/fhir+json" {
			t.Errorf("%s %s with %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing",`+
			`"diagnostics":"the clinic is closed","expression":["Bundle.entry[3].resource"]}]}`)
	}))
	defer refusing.Close()
	for _, tt := range []struct {
		url  string
		want []string
	}{
		{real.URL, []string{"bundle 1 (patients 0-9", "413 Request Entity Too Large", "the limit is 50"}},
		{refusing.URL + "/fhir", []string{"422 Unprocessable Entity", "error (processing) at Bundle.entry[3].resource: the clinic is closed"}},
		{"http://127.0.0.1:" + freePort(t), []string{"connection refused"}},
	} {
		var stderr bytes.Buffer
		code := run(ctx, []string{"synth", "-patients", "30", "-batch", "10", "-url", tt.url}, func(string) string { return "" }, &stderr)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s", tt.url, code, &stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%s: output should contain %q:\n%s", tt.url, w, &stderr)
			}
		}
	}
	if n := count(t, real.URL, "Observation"); n != 0 {
		t.Errorf("%d observations stored from refused Bundles", n)
	}
}
