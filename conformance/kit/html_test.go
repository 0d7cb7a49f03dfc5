package kit_test

import (
	"bytes"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"infusion/conformance/kit"
	"infusion/server/servertest"
)

// wellFormed checks that every element of an HTML page is closed in order
// (void elements aside), as a browser needs no error recovery to read it.
func wellFormed(t *testing.T, page string) {
	t.Helper()
	void := map[string]bool{"meta": true, "br": true, "hr": true, "img": true, "link": true, "input": true}
	var stack []string
	for _, m := range regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9]*)[^<>]*>`).FindAllStringSubmatch(page, -1) {
		name := strings.ToLower(m[2])
		switch {
		case void[name]:
		case m[1] == "":
			stack = append(stack, name)
		case len(stack) == 0 || stack[len(stack)-1] != name:
			t.Fatalf("</%s> closes %v", name, stack)
		default:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed elements %v", stack)
	}
	if !strings.HasPrefix(page, "<!DOCTYPE html>") {
		t.Error("no doctype")
	}
}

func TestHTMLReport(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(&dropHeader{ResponseWriter: w, name: "ETag"}, r)
		})
	})
	rep := run(t, kit.Options{Base: ts.URL, Suites: []string{"rest", "infusion"}})
	// A check whose text would break the page if it were not escaped.
	rep.Checks = append(rep.Checks, kit.Check{
		ID: "x.escape", Title: `<b>bold</b> & "quoted"`, Suite: "x", Level: kit.Should, Spec: "javascript:alert(1)",
		Status: kit.Fail, Reason: `<script>alert("reason")</script>`,
		Exchanges: []kit.Exchange{{Method: "GET", URL: ts.URL + "/x", Status: 500, ResponseBody: `</pre></details><script>alert(2)</script>`}},
	})
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	wellFormed(t, page)
	for _, s := range []string{rep.RunID, ts.URL, rep.Software, "<h2 id=\"suite-rest\">", "<h2 id=\"suite-infusion\">"} {
		if !strings.Contains(page, s) {
			t.Errorf("the page lacks %q", s)
		}
	}
	if rep.Software == "" {
		t.Error("the report has no server software")
	}
	for _, c := range rep.Checks {
		if !strings.Contains(page, "<code>"+html.EscapeString(c.ID)+"</code>") {
			t.Errorf("the page lacks the check %s", c.ID)
		}
	}
	// A failed check's exchange, in <details>.
	var fail kit.Check
	for _, c := range rep.Checks {
		if c.ID == "rest.read.etag" && c.Status == kit.Fail {
			fail = c
			break
		}
	}
	if len(fail.Exchanges) == 0 {
		t.Fatal("rest.read.etag did not fail with its exchanges")
	}
	ex := fail.Exchanges[0]
	if !strings.Contains(page, "<details><summary>"+ex.Method+" "+ex.URL) || !strings.Contains(page, "HTTP 200") {
		t.Errorf("the page lacks the exchange %s %s", ex.Method, ex.URL)
	}
	if !strings.Contains(page, `<span class="status fail">FAIL</span>`) || !strings.Contains(page, `<span class="status pass">PASS</span>`) {
		t.Error("statuses are not coloured")
	}
	for _, bad := range []string{"<script>", "<b>bold", `href="javascript:`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q unescaped", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(&#34;reason&#34;)&lt;/script&gt;") {
		t.Error("the reason is not escaped as text")
	}
	if strings.Contains(page, "http://") && strings.Contains(page, `src="http`) || strings.Contains(page, "<link") {
		t.Error("the page loads an external asset")
	}
}
