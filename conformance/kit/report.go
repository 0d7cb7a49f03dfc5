package kit

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	type summary struct {
		Suites      []SuiteSummary `json:"suites"`
		ShallFailed bool           `json:"shallFailed"`
	}
	out := struct {
		*Report
		Summary summary `json:"summary"`
	}{r, summary{r.Summary(), r.ShallFailed()}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("kit: writing the JSON report: %w", err)
	}
	return nil
}

// The JUnit XML elements (the schema CI systems read).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML: a testsuite per suite, a
// testcase per check, <failure> for a failed check and <skipped> for a
// skipped one.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "FHIR conformance " + r.Base}
	idx := map[string]int{}
	for _, c := range r.Checks {
		i, ok := idx[c.Suite]
		if !ok {
			i = len(out.Suites)
			idx[c.Suite] = i
			out.Suites = append(out.Suites, junitSuite{Name: c.Suite, Timestamp: r.Started.Format("2006-01-02T15:04:05")})
		}
		s := &out.Suites[i]
		tc := junitCase{Name: c.Name(), Classname: "conformance." + c.Suite, SystemOut: c.Level + " " + c.Title + "\n" + c.Spec}
		switch c.Status {
		case Fail:
			var text strings.Builder
			for _, ex := range c.Exchanges {
				fmt.Fprintf(&text, "%s %s -> %d %s\n", ex.Method, ex.URL, ex.Status, ex.Error)
			}
			tc.Failure = &junitMessage{Message: c.Level + ": " + c.Reason, Type: c.Level, Text: text.String()}
			s.Failures++
			out.Failures++
		case Skip:
			tc.Skipped = &junitMessage{Message: c.Reason}
			s.Skipped++
			out.Skipped++
		}
		s.Tests++
		out.Tests++
		s.Cases = append(s.Cases, tc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("kit: writing the JUnit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("kit: writing the JUnit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("kit: writing the JUnit report: %w", err)
	}
	return nil
}

// Line is the one-line console form of a check.
func (c Check) Line() string {
	s := fmt.Sprintf("%-4s %-6s %s", strings.ToUpper(c.Status), c.Level, c.Name())
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

// WriteSummary writes the console summary: passed, failed and skipped per
// suite, and the failed SHALL checks.
func (r *Report) WriteSummary(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nconformance run %s against %s", r.RunID, r.Base)
	if r.Software != "" {
		fmt.Fprintf(&b, " (%s)", r.Software)
	}
	b.WriteString("\n")
	for _, s := range r.Summary() {
		fmt.Fprintf(&b, "  %-10s %3d passed  %3d failed  %3d skipped\n", s.Suite, s.Passed, s.Failed, s.Skipped)
	}
	if r.Kept {
		fmt.Fprintf(&b, "kept %d resources tagged %s|%s\n", len(r.Created), TagSystem, r.RunID)
	} else if len(r.Created) > 0 {
		fmt.Fprintf(&b, "deleted the %d resources the kit created\n", len(r.Created)-len(r.CleanupErrors))
	}
	for _, e := range r.CleanupErrors {
		fmt.Fprintf(&b, "cleanup: %s\n", e)
	}
	if r.ShallFailed() {
		b.WriteString("FAILED: a SHALL check failed\n")
	} else {
		b.WriteString("OK: every SHALL check passed\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
