package kit

import (
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// htmlReport is the page of WriteHTML: one file, inline CSS, no external
// asset, every value escaped by html/template.
var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"headers": formatHeaders,
	"upper":   strings.ToUpper,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>FHIR conformance report {{.RunID}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.n { text-align: right; }
.pass { color: #fff; background: #2e7d32; }
.fail { color: #fff; background: #c62828; }
.skip { color: #222; background: #ddd; }
span.status { padding: 0.1em 0.5em; border-radius: 3px; font-weight: bold; font-size: 0.85em; }
.verdict-ok { color: #2e7d32; font-weight: bold; } .verdict-fail { color: #c62828; font-weight: bold; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85em; }
pre { background: #f7f7f7; padding: 0.5em; white-space: pre-wrap; word-break: break-all; max-height: 30em; overflow: auto; }
details { margin: 0.3em 0; }
</style>
</head>
<body>
<h1>FHIR R4 conformance report</h1>
<table>
<tr><th>Run</th><td><code>{{.RunID}}</code></td></tr>
<tr><th>Base URL</th><td><code>{{.Base}}</code></td></tr>
<tr><th>Server software</th><td>{{if .Software}}{{.Software}}{{else}}(not stated in the CapabilityStatement){{end}}</td></tr>
<tr><th>Started</th><td>{{.Started}}</td></tr>
<tr><th>Duration</th><td>{{.Duration}}</td></tr>
<tr><th>Verdict</th><td>{{if .ShallFailed}}<span class="verdict-fail">FAILED: a SHALL check failed</span>{{else}}<span class="verdict-ok">OK: every SHALL check passed</span>{{end}}</td></tr>
<tr><th>Cleanup</th><td>{{.Cleanup}}{{range .CleanupErrors}}<br>{{.}}{{end}}</td></tr>
</table>

<h2>Summary</h2>
<table>
<tr><th>Suite</th><th>Passed</th><th>Failed</th><th>Skipped</th></tr>
{{range .Summary}}<tr><td><a href="#suite-{{.Suite}}">{{.Suite}}</a></td><td class="n">{{.Passed}}</td><td class="n">{{.Failed}}</td><td class="n">{{.Skipped}}</td></tr>
{{end}}</table>
{{range .Suites}}
<h2 id="suite-{{.Name}}">Suite {{.Name}}</h2>
<table>
<tr><th>Status</th><th>Check</th><th>Title</th><th>Resource</th><th>Level</th><th>Spec</th><th>Reason</th></tr>
{{range .Checks}}<tr id="check-{{.ID}}{{if .Resource}}-{{.Resource}}{{end}}">
<td><span class="status {{.Status}}">{{upper .Status}}</span></td>
<td><code>{{.ID}}</code></td>
<td>{{.Title}}</td>
<td>{{.Resource}}</td>
<td>{{.Level}}</td>
<td><a href="{{.Spec}}">{{.Spec}}</a></td>
<td>{{.Reason}}{{if and (eq .Status "fail") .Exchanges}}
{{range $i, $ex := .Exchanges}}<details><summary>{{$ex.Method}} {{$ex.URL}} &rarr; {{if $ex.Error}}{{$ex.Error}}{{else}}{{$ex.Status}}{{end}}</summary>
<pre>{{$ex.Method}} {{$ex.URL}}
{{headers $ex.RequestHeaders}}{{if $ex.RequestBody}}
{{$ex.RequestBody}}{{end}}</pre>
<pre>{{if $ex.Error}}{{$ex.Error}}{{else}}HTTP {{$ex.Status}}
{{headers $ex.ResponseHeaders}}{{if $ex.ResponseBody}}
{{$ex.ResponseBody}}{{end}}{{end}}</pre>
</details>
{{end}}{{end}}</td>
</tr>
{{end}}</table>
{{end}}
</body>
</html>
`))

// htmlSuite is the checks of one suite, in the order they ran.
type htmlSuite struct {
	Name   string
	Checks []Check
}

// WriteHTML writes the report as a single HTML page: the run, the server,
// a summary per suite, then every check by suite, with the request and
// response pairs of each failed check.
func (r *Report) WriteHTML(w io.Writer) error {
	var suites []htmlSuite
	idx := map[string]int{}
	for _, c := range r.Checks {
		i, ok := idx[c.Suite]
		if !ok {
			i = len(suites)
			idx[c.Suite] = i
			suites = append(suites, htmlSuite{Name: c.Suite})
		}
		suites[i].Checks = append(suites[i].Checks, c)
	}
	cleanup := "nothing was created"
	switch {
	case r.Kept:
		cleanup = fmt.Sprintf("kept %d resources tagged %s|%s", len(r.Created), TagSystem, r.RunID)
	case len(r.Created) > 0:
		cleanup = fmt.Sprintf("deleted the %d resources the kit created", len(r.Created)-len(r.CleanupErrors))
	}
	data := struct {
		*Report
		Started, Duration, Cleanup string
		Summary                    []SuiteSummary
		Suites                     []htmlSuite
		ShallFailed                bool
	}{
		Report:      r,
		Started:     r.Started.Format(time.RFC3339),
		Duration:    r.Finished.Sub(r.Started).Round(time.Millisecond).String(),
		Cleanup:     cleanup,
		Summary:     r.Summary(),
		Suites:      suites,
		ShallFailed: r.ShallFailed(),
	}
	if err := htmlReport.Execute(w, data); err != nil {
		return fmt.Errorf("kit: writing the HTML report: %w", err)
	}
	return nil
}

// formatHeaders renders headers one per line, sorted by name.
func formatHeaders(h http.Header) string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return b.String()
}
