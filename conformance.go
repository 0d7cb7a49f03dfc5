package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"infusion/conformance/kit"
)

const conformanceUsage = `usage: infusion conformance -base URL [flags]

Runs the conformance kit against the FHIR R4 server at URL: it reads
/metadata, then checks what the server claims (suites: %s). Everything
it creates is tagged with the run id and deleted at the end unless -keep.
Exit status: 0 when every SHALL check passes, 1 when one fails, 2 when the
server cannot be reached, /metadata is not a CapabilityStatement or a flag
is wrong.

flags:
`

// headerFlags collects repeatable -header 'Name: value' flags.
type headerFlags http.Header

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("%q is not 'Name: value'", s)
	}
	http.Header(h).Add(name, strings.TrimSpace(value))
	return nil
}

// conformanceCommand runs the conformance kit and returns the exit status.
func conformanceCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, conformanceUsage, strings.Join(kit.AllSuites(), ", "))
		fs.PrintDefaults()
	}
	base := fs.String("base", "", "the FHIR base URL to test (required)")
	suites := fs.String("suite", "", "comma-separated suites to run (default all: "+strings.Join(kit.AllSuites(), ",")+")")
	header := headerFlags{}
	fs.Var(header, "header", "a header sent with every request, 'Name: value' (repeatable)")
	timeout := fs.Duration("timeout", 30*time.Second, "the time limit of each request")
	keep := fs.Bool("keep", false, "leave what the kit created on the server")
	jsonFile := fs.String("json", "", "write the JSON report to `FILE`")
	junitFile := fs.String("junit", "", "write the JUnit XML report to `FILE`")
	htmlFile := fs.String("html", "", "write the HTML report (one file, for a ticket) to `FILE`")
	testScript := fs.String("testscript", "", "run the R4 TestScript `FILE` or every *.json TestScript in a directory (suite testscript; alone unless -suite is given)")
	testReport := fs.String("testreport", "", "write a TestReport resource per TestScript to `DIR`")
	maxBody := fs.String("max-body", "", "the server's request body limit, e.g. 16MiB: errors.oversized-body sends 1 MiB more (without it, that check runs only against localhost)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *base == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "infusion conformance: -base URL is required, and takes no arguments")
		fs.Usage()
		return 2
	}
	if *testReport != "" && *testScript == "" {
		fmt.Fprintln(stderr, "infusion conformance: -testreport needs -testscript")
		return 2
	}
	if *testScript != "" {
		if _, err := kit.TestScriptFiles(*testScript); err != nil {
			fmt.Fprintf(stderr, "infusion conformance: -testscript: %v\n", err)
			return 2
		}
	}
	opts := kit.Options{
		Base: *base, Header: http.Header(header), Timeout: *timeout, Keep: *keep,
	}
	if *maxBody != "" {
		size, err := humanize.ParseBytes(*maxBody)
		if err != nil || size == 0 || size > 1<<40 {
			fmt.Fprintf(stderr, "infusion conformance: -max-body %q is not a size such as 16MiB\n", *maxBody)
			return 2
		}
		opts.BodyLimit = int64(size)
	}
	if *testScript != "" {
		opts.TestScripts = []string{*testScript}
	}
	// One updating line on a terminal, a plain line per check otherwise.
	progress := kit.NewProgress(stdout)
	opts.Progress = progress.Check
	if *suites != "" {
		for _, s := range strings.Split(*suites, ",") {
			if s = strings.TrimSpace(s); s != "" {
				opts.Suites = append(opts.Suites, s)
			}
		}
	}
	report, err := kit.Run(ctx, opts)
	progress.Done()
	if err != nil {
		fmt.Fprintf(stderr, "infusion conformance: %v\n", err)
		return 2
	}
	if err := report.WriteSummary(stdout); err != nil {
		fmt.Fprintf(stderr, "infusion conformance: %v\n", err)
		return 2
	}
	for _, out := range []struct {
		file  string
		write func(io.Writer) error
	}{{*jsonFile, report.WriteJSON}, {*junitFile, report.WriteJUnit}, {*htmlFile, report.WriteHTML}} {
		if out.file == "" {
			continue
		}
		if err := writeFile(out.file, out.write); err != nil {
			fmt.Fprintf(stderr, "infusion conformance: %v\n", err)
			return 2
		}
	}
	if *testReport != "" {
		if err := report.WriteTestReports(*testReport); err != nil {
			fmt.Fprintf(stderr, "infusion conformance: %v\n", err)
			return 2
		}
	}
	if report.ShallFailed() {
		return 1
	}
	return 0
}

// writeFile writes a report to a file.
func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("creating the report: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
