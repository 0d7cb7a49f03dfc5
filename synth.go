package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"infusion/mapping/synth"
)

// synthOptions are the flags of the synth command.
type synthOptions struct {
	cfg   synth.Config
	out   string // NDJSON folder, or
	url   string // FHIR base to send transaction Bundles to
	batch int    // patients per Bundle
	quiet bool
}

const synthUsage = `usage: infusion synth -patients N (-out DIR | -url BASE) [flags]

Generates deterministic infusion courses (orders, sessions, pain scores,
vital signs, side effects, opioid orders) for N patients: one NDJSON file
per resource type in DIR, or transaction Bundles of PUT entries sent to the
FHIR server at BASE (sending them again changes nothing but versions).
The same -seed and flags give the same resources, byte for byte.

flags:
`

// parseSynthFlags reads the synth command's flags. The error names the
// flag at fault; flag.ErrHelp means -h was asked for.
func parseSynthFlags(args []string, stderr io.Writer) (synthOptions, error) {
	def := synth.DefaultConfig()
	rates := *def.Rates
	rates.Response = maps.Clone(rates.Response)
	opts := synthOptions{cfg: def}
	opts.cfg.Rates = &rates

	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), synthUsage)
		fs.PrintDefaults()
	}
	fs.IntVar(&opts.cfg.Patients, "patients", def.Patients, "number of patients (each has one infusion course)")
	fs.Uint64Var(&opts.cfg.Seed, "seed", def.Seed, "random seed: the same seed and flags give the same data")
	fs.Var(dateFlag{&opts.cfg.Start}, "start", "earliest day a course starts (YYYY-MM-DD); courses start within a year after it")
	fs.Var(responseFlag(rates.Response), "response",
		"responder share by drug class, class=rate pairs separated by commas; classes: "+strings.Join(synth.Classes(), ", "))
	fs.Float64Var(&rates.Nausea, "nausea", rates.Nausea, "chance of nausea per session")
	fs.Float64Var(&rates.Stop, "stop", rates.Stop, "chance that nausea stops the session early")
	fs.Float64Var(&rates.Dizziness, "dizziness", rates.Dizziness, "chance of dizziness per session")
	fs.Float64Var(&rates.Headache, "headache", rates.Headache, "chance of headache per session")
	fs.Float64Var(&rates.Dissociation, "dissociation", rates.Dissociation, "chance of dissociation per ketamine session")
	fs.Float64Var(&rates.Home, "home", rates.Home, "share of courses given at home, for the drugs that may be (lidocaine, magnesium)")
	fs.StringVar(&opts.out, "out", "", "write one NDJSON file per resource type into this folder")
	fs.StringVar(&opts.url, "url", "", "send transaction Bundles to this FHIR base URL")
	fs.IntVar(&opts.batch, "batch", 50, "patients per transaction Bundle (with -url)")
	fs.BoolVar(&opts.quiet, "quiet", false, "no progress bar, only the final summary line")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	bad := func(format string, a ...any) (synthOptions, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintf(stderr, "infusion synth: %v\n\n", err)
		fs.Usage()
		return opts, err
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case opts.out == "" && opts.url == "":
		return bad("one of -out and -url is required")
	case opts.out != "" && opts.url != "":
		return bad("-out and -url cannot be used together")
	}
	if opts.url != "" {
		u, err := url.Parse(opts.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("-url: %q is not an absolute http(s) URL", opts.url)
		}
	}
	if opts.cfg.Patients < 1 {
		return bad("-patients: %d, want at least 1", opts.cfg.Patients)
	}
	if opts.batch < 1 {
		return bad("-batch: %d, want at least 1", opts.batch)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"nausea", rates.Nausea}, {"stop", rates.Stop}, {"dizziness", rates.Dizziness},
		{"headache", rates.Headache}, {"dissociation", rates.Dissociation}, {"home", rates.Home},
	} {
		if !(f.v >= 0 && f.v <= 1) {
			return bad("-%s: %v is not a rate between 0 and 1", f.name, f.v)
		}
	}
	if err := opts.cfg.Validate(); err != nil {
		return bad("-response: %w", err)
	}
	return opts, nil
}

// dateFlag is a day given as YYYY-MM-DD.
type dateFlag struct{ t *time.Time }

func (d dateFlag) String() string {
	if d.t == nil || d.t.IsZero() {
		return ""
	}
	return d.t.Format(time.DateOnly)
}

func (d dateFlag) Set(s string) error {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
	}
	*d.t = t
	return nil
}

// responseFlag sets response rates of the classes it names; the others
// keep theirs.
type responseFlag map[string]float64

func (r responseFlag) String() string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(r)) {
		parts = append(parts, fmt.Sprintf("%s=%v", c, r[c]))
	}
	return strings.Join(parts, ",")
}

func (r responseFlag) Set(s string) error {
	m, err := synth.ParseResponse(s)
	if err != nil {
		return err
	}
	maps.Copy(r, m)
	return nil
}

// synthCommand runs "infusion synth" and returns the exit status: 2 for
// bad flags, 1 when writing or sending fails.
func synthCommand(ctx context.Context, args []string, stderr io.Writer) int {
	opts, err := parseSynthFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	began := time.Now()
	var bar *progressbar.ProgressBar
	if !opts.quiet && isTerminal(stderr) {
		bar = progressbar.NewOptions(opts.cfg.Patients,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("synth"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("patients"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	var sink synthSink
	if opts.out != "" {
		sink, err = newFileSink(opts.out)
	} else {
		sink = newHTTPSink(opts.url, opts.batch)
	}
	if err == nil {
		err = generate(ctx, synth.New(opts.cfg), sink, bar)
	}
	if bar != nil {
		if err == nil {
			bar.Finish() // clears the bar's line
		} else {
			bar.Exit() // keeps it, so the error shows where it stopped
			fmt.Fprintln(stderr)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "infusion synth: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "synth: %d patients, %s, %s, %s\n",
		opts.cfg.Patients, sink.counts(), sink.where(), time.Since(began).Round(time.Millisecond))
	return 0
}

// isTerminal reports whether w is a terminal (then the progress bar shows).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// generate makes the patients one at a time and hands each one's resources
// to sink, so that memory stays bounded whatever the number of patients.
func generate(ctx context.Context, gen *synth.Generator, sink synthSink, bar *progressbar.ProgressBar) error {
	for i := range gen.Patients() {
		if err := ctx.Err(); err != nil {
			sink.abort()
			return fmt.Errorf("interrupted after %d patients: %w", i, err)
		}
		if err := sink.patient(ctx, gen.Patient(i)); err != nil {
			sink.abort()
			return err
		}
		if bar != nil {
			bar.Add(1)
		}
	}
	return sink.finish(ctx)
}

// synthSink takes the generated resources, patient by patient.
type synthSink interface {
	patient(ctx context.Context, rs []synth.Resource) error
	finish(ctx context.Context) error // after the last patient
	abort()                           // after a failure: leave nothing half written
	counts() string                   // resources written, by type
	where() string                    // what was written where
}

// tally counts resources by type.
type tally map[string]int

func (t tally) add(rs []synth.Resource) {
	for _, r := range rs {
		t[r.Type]++
	}
}

func (t tally) counts() string {
	total := 0
	var parts []string
	for _, typ := range synth.Types() {
		total += t[typ]
		parts = append(parts, fmt.Sprintf("%s %d", typ, t[typ]))
	}
	return fmt.Sprintf("%d resources (%s)", total, strings.Join(parts, ", "))
}

// fileSink writes NDJSON files.
type fileSink struct {
	tally
	dir string
	w   *synth.NDJSON
}

func newFileSink(dir string) (*fileSink, error) {
	w, err := synth.CreateNDJSON(dir)
	if err != nil {
		return nil, err
	}
	return &fileSink{tally: tally{}, dir: dir, w: w}, nil
}

func (s *fileSink) patient(_ context.Context, rs []synth.Resource) error {
	s.add(rs)
	return s.w.Write(rs)
}

func (s *fileSink) finish(context.Context) error { return s.w.Close() }
func (s *fileSink) abort()                       { s.w.Discard() }
func (s *fileSink) where() string {
	return fmt.Sprintf("%d files in %s", len(s.w.Files()), s.dir)
}

// bundleTimeout bounds one Bundle's round trip (a 50-patient Bundle takes
// about a second).
const bundleTimeout = 10 * time.Minute

// httpSink sends a transaction Bundle of PUT entries for every batch of
// patients.
type httpSink struct {
	tally
	base     string
	batch    int
	client   *http.Client
	pending  []synth.Resource
	patients int // in pending
	first    int // index of the first patient in pending
	bundles  int
}

func newHTTPSink(base string, batch int) *httpSink {
	return &httpSink{tally: tally{}, base: strings.TrimRight(base, "/"), batch: batch, client: &http.Client{Timeout: bundleTimeout}}
}

func (s *httpSink) patient(ctx context.Context, rs []synth.Resource) error {
	s.pending = append(s.pending, rs...)
	s.patients++
	if s.patients < s.batch {
		return nil
	}
	return s.flush(ctx)
}

func (s *httpSink) finish(ctx context.Context) error {
	if s.patients == 0 {
		return nil
	}
	return s.flush(ctx)
}

func (s *httpSink) abort() {}

func (s *httpSink) where() string {
	return fmt.Sprintf("%d bundles to %s", s.bundles, s.base)
}

// flush sends the pending patients' resources in one transaction.
func (s *httpSink) flush(ctx context.Context) error {
	last := s.first + s.patients - 1
	if err := postBundle(ctx, s.client, s.base, synth.TransactionBundle(s.pending)); err != nil {
		return fmt.Errorf("bundle %d (patients %d-%d, %d resources): %w", s.bundles+1, s.first, last, len(s.pending), err)
	}
	s.bundles++
	s.add(s.pending)
	s.first += s.patients
	s.pending, s.patients = s.pending[:0], 0
	return nil
}

// postBundle posts a Bundle to a FHIR base. An answer other than 2xx is an
// error carrying the OperationOutcome's issues.
func postBundle(ctx context.Context, client *http.Client, base string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", base, err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "return=minimal") // the answer need not repeat the resources
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return fmt.Errorf("POST %s: reading the answer: %w", base, err)
		}
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return fmt.Errorf("POST %s: %s: %s", base, resp.Status, outcomeText(data))
}

// outcomeText returns the issues of an OperationOutcome, one after the
// other ("error: Bundle.entry[3].resource.status: ..."), or the start of
// a body that is none.
func outcomeText(data []byte) string {
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity    string   `json:"severity"`
			Code        string   `json:"code"`
			Diagnostics string   `json:"diagnostics"`
			Expression  []string `json:"expression"`
		} `json:"issue"`
	}
	if json.Unmarshal(data, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		text := strings.TrimSpace(string(data))
		if len(text) > 500 {
			text = text[:500] + "…"
		}
		if text == "" {
			return "(no body)"
		}
		return text
	}
	var parts []string
	for _, is := range oo.Issue {
		part := is.Severity + " (" + is.Code + ")"
		if len(is.Expression) > 0 {
			part += " at " + strings.Join(is.Expression, ", ")
		}
		if is.Diagnostics != "" {
			part += ": " + is.Diagnostics
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "OperationOutcome without issues"
	}
	return strings.Join(parts, "; ")
}
