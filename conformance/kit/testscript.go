package kit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"infusion/conformance/kit/fhirpath"
)

// SuiteTestScript is the suite of the checks that TestScripts produce: one
// check per setup, test and teardown of each script, with the id
// testscript.<script id>.<test name>.
const SuiteTestScript = "testscript"

const specTestScript = "https://hl7.org/fhir/R4/testscript.html"

// Tester is TestReport.tester.
const Tester = "infusion conformance kit"

// TestReportFile is a TestReport resource the kit wrote for a script.
type TestReportFile struct {
	Script string // the script file
	Name   string // a file name for it: <script id>.json
	JSON   []byte
}

// WriteTestReports writes each TestReport to dir, creating dir if needed.
func (r *Report) WriteTestReports(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("kit: %w", err)
	}
	for _, tr := range r.TestReports {
		if err := os.WriteFile(filepath.Join(dir, tr.Name), tr.JSON, 0o644); err != nil {
			return fmt.Errorf("kit: writing the TestReport: %w", err)
		}
	}
	return nil
}

// TestScriptFiles lists the TestScript files a -testscript argument names:
// the file, or the *.json files of the directory in name order.
func TestScriptFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("kit: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	files, err := filepath.Glob(filepath.Join(path, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("kit: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("kit: no *.json TestScript in %s", path)
	}
	sort.Strings(files)
	return files, nil
}

// The parts of an R4 TestScript the kit reads.
type tsScript struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	URL          string            `json:"url"`
	Name         string            `json:"name"`
	Title        string            `json:"title"`
	Contained    []json.RawMessage `json:"contained"`
	Fixture      []struct {
		ID         string `json:"id"`
		Autocreate bool   `json:"autocreate"`
		Autodelete bool   `json:"autodelete"`
		Resource   *struct {
			Reference string `json:"reference"`
		} `json:"resource"`
	} `json:"fixture"`
	Variable []tsVariable `json:"variable"`
	Setup    *struct {
		Action []tsAction `json:"action"`
	} `json:"setup"`
	Test []struct {
		Name        string     `json:"name"`
		Description string     `json:"description"`
		Action      []tsAction `json:"action"`
	} `json:"test"`
	Teardown *struct {
		Action []tsAction `json:"action"`
	} `json:"teardown"`
}

type tsVariable struct {
	Name         string `json:"name"`
	DefaultValue string `json:"defaultValue"`
	Expression   string `json:"expression"`
	HeaderField  string `json:"headerField"`
	Path         string `json:"path"`
	SourceID     string `json:"sourceId"`
}

type tsAction struct {
	Operation *tsOperation `json:"operation"`
	Assert    *tsAssert    `json:"assert"`
}

type tsOperation struct {
	Type *struct {
		System string `json:"system"`
		Code   string `json:"code"`
	} `json:"type"`
	Resource      string `json:"resource"`
	Label         string `json:"label"`
	Description   string `json:"description"`
	Accept        string `json:"accept"`
	ContentType   string `json:"contentType"`
	Method        string `json:"method"`
	Params        string `json:"params"`
	URL           string `json:"url"`
	RequestID     string `json:"requestId"`
	ResponseID    string `json:"responseId"`
	SourceID      string `json:"sourceId"`
	TargetID      string `json:"targetId"`
	RequestHeader []struct {
		Field string `json:"field"`
		Value string `json:"value"`
	} `json:"requestHeader"`
}

type tsAssert struct {
	Label                     string `json:"label"`
	Description               string `json:"description"`
	Direction                 string `json:"direction"`
	CompareToSourceID         string `json:"compareToSourceId"`
	CompareToSourceExpression string `json:"compareToSourceExpression"`
	CompareToSourcePath       string `json:"compareToSourcePath"`
	ContentType               string `json:"contentType"`
	Expression                string `json:"expression"`
	HeaderField               string `json:"headerField"`
	MinimumID                 string `json:"minimumId"`
	NavigationLinks           *bool  `json:"navigationLinks"`
	Operator                  string `json:"operator"`
	Path                      string `json:"path"`
	RequestMethod             string `json:"requestMethod"`
	RequestURL                string `json:"requestURL"`
	Resource                  string `json:"resource"`
	Response                  string `json:"response"`
	ResponseCode              string `json:"responseCode"`
	SourceID                  string `json:"sourceId"`
	ValidateProfileID         string `json:"validateProfileId"`
	Value                     string `json:"value"`
	WarningOnly               bool   `json:"warningOnly"`
}

// The parts of an R4 TestReport the kit writes.
type trReport struct {
	ResourceType string       `json:"resourceType"`
	Name         string       `json:"name,omitempty"`
	Status       string       `json:"status"`
	TestScript   trReference  `json:"testScript"`
	Result       string       `json:"result"`
	Score        json.Number  `json:"score"`
	Tester       string       `json:"tester"`
	Issued       string       `json:"issued"`
	Setup        *trActions   `json:"setup,omitempty"`
	Test         []trTest     `json:"test,omitempty"`
	Teardown     *trActions   `json:"teardown,omitempty"`
	Identifier   *trIdentifer `json:"identifier,omitempty"`
}

type trIdentifer struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type trReference struct {
	Reference string `json:"reference,omitempty"`
	Display   string `json:"display,omitempty"`
}

type trActions struct {
	Action []trAction `json:"action"`
}

type trTest struct {
	Name        string     `json:"name,omitempty"`
	Description string     `json:"description,omitempty"`
	Action      []trAction `json:"action"`
}

type trAction struct {
	Operation *trResult `json:"operation,omitempty"`
	Assert    *trResult `json:"assert,omitempty"`
}

type trResult struct {
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
}

// Action results of a TestReport.
const (
	trPass    = "pass"
	trSkip    = "skip"
	trFail    = "fail"
	trWarning = "warning"
	trError   = "error"
)

// tsFixture is a fixture: a resource from the script, or a response saved
// under a responseId.
type tsFixture struct {
	body       []byte      // the JSON as given (variables not yet substituted)
	header     http.Header // for a response
	status     int         // for a response
	isResponse bool
	// typ, id and vid name the resource on the server once created.
	typ, id, vid           string
	autocreate, autodelete bool
}

// tsRun is the run of one script.
type tsRun struct {
	r        *runner
	file     string
	script   tsScript
	fixtures map[string]*tsFixture
	last     *tsFixture // the last response
	lastReq  struct {
		method, url string
		header      http.Header
	}
	asserts, passed int
	hardFail        bool
}

// testScriptSuite runs each TestScript of opts.TestScripts.
func (r *runner) testScriptSuite(ctx context.Context) {
	for _, arg := range r.opts.TestScripts {
		files, err := TestScriptFiles(arg)
		if err != nil {
			c := r.begin("testscript."+scriptSlug(filepath.Base(arg))+".load", "the TestScript can be read", SuiteTestScript, "", Shall, specTestScript)
			c.fail("%v", err)
			continue
		}
		for _, f := range files {
			r.runTestScript(ctx, f)
		}
	}
}

var slugRe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func scriptSlug(s string) string {
	s = strings.Trim(slugRe.ReplaceAllString(strings.TrimSpace(s), "-"), "-")
	if s == "" {
		return "unnamed"
	}
	return s
}

// loadTestScript reads a script and its fixtures, and rejects what the
// kit does not support before anything is sent.
func loadTestScript(file string) (*tsRun, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	t := &tsRun{file: file, fixtures: map[string]*tsFixture{}}
	if err := json.Unmarshal(data, &t.script); err != nil {
		return nil, fmt.Errorf("%s is not a TestScript: %w", file, err)
	}
	s := &t.script
	if s.ResourceType != "TestScript" {
		return nil, fmt.Errorf("%s is a %q, not a TestScript", file, s.ResourceType)
	}
	contained := map[string][]byte{}
	for _, c := range s.Contained {
		var head struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(c, &head) == nil && head.ID != "" {
			contained[head.ID] = c
		}
	}
	for _, f := range s.Fixture {
		if f.ID == "" || f.Resource == nil || f.Resource.Reference == "" {
			return nil, fmt.Errorf("fixture %q has no resource.reference", f.ID)
		}
		ref := f.Resource.Reference
		var body []byte
		switch {
		case strings.HasPrefix(ref, "#"):
			if body = contained[ref[1:]]; body == nil {
				return nil, fmt.Errorf("fixture %q: no contained resource with id %q", f.ID, ref[1:])
			}
		case strings.Contains(ref, "://"):
			return nil, fmt.Errorf("fixture %q: the kit reads fixtures from contained resources or files, not from %s", f.ID, ref)
		default:
			p := ref
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(file), filepath.FromSlash(ref))
			}
			if body, err = os.ReadFile(p); err != nil {
				return nil, fmt.Errorf("fixture %q: %w", f.ID, err)
			}
		}
		t.fixtures[f.ID] = &tsFixture{body: body, autocreate: f.Autocreate, autodelete: f.Autodelete}
	}
	for _, v := range s.Variable {
		if v.Path != "" {
			return nil, fmt.Errorf("variable %q: path (XPath/JSONPath) is not supported; use expression (FHIRPath)", v.Name)
		}
	}
	check := func(where string, actions []tsAction) error {
		for i, a := range actions {
			if a.Operation == nil && a.Assert == nil {
				return fmt.Errorf("%s action %d has neither operation nor assert", where, i+1)
			}
			if as := a.Assert; as != nil {
				switch {
				case as.Path != "":
					return fmt.Errorf("%s action %d: assert.path (XPath/JSONPath) is not supported; use expression (FHIRPath)", where, i+1)
				case as.CompareToSourcePath != "":
					return fmt.Errorf("%s action %d: assert.compareToSourcePath is not supported; use compareToSourceExpression", where, i+1)
				case as.ValidateProfileID != "":
					return fmt.Errorf("%s action %d: assert.validateProfileId is not supported", where, i+1)
				case as.NavigationLinks != nil:
					return fmt.Errorf("%s action %d: assert.navigationLinks is not supported", where, i+1)
				}
				for _, e := range []string{as.Expression, as.CompareToSourceExpression} {
					if e != "" && !strings.Contains(e, "${") {
						if _, err := fhirpath.Parse(e); err != nil {
							return fmt.Errorf("%s action %d: %w", where, i+1, err)
						}
					}
				}
			}
		}
		return nil
	}
	if s.Setup != nil {
		if err := check("setup", s.Setup.Action); err != nil {
			return nil, err
		}
	}
	for _, ts := range s.Test {
		if err := check("test "+ts.Name, ts.Action); err != nil {
			return nil, err
		}
	}
	if s.Teardown != nil {
		if err := check("teardown", s.Teardown.Action); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// runTestScript runs one script: its checks go to the report, its
// TestReport to Report.TestReports.
func (r *runner) runTestScript(ctx context.Context, file string) {
	t, err := loadTestScript(file)
	if err != nil {
		c := r.begin("testscript."+scriptSlug(strings.TrimSuffix(filepath.Base(file), ".json"))+".load", "the TestScript can be run by the kit", SuiteTestScript, "", Shall, specTestScript)
		c.fail("%v", err)
		return
	}
	t.r = r
	s := &t.script
	sid := scriptSlug(s.ID)
	if s.ID == "" {
		sid = scriptSlug(strings.TrimSuffix(filepath.Base(file), ".json"))
	}
	title := s.Title
	if title == "" {
		title = s.Name
	}
	tr := trReport{
		ResourceType: "TestReport", Status: "completed", Tester: Tester,
		Name:       "TestReport of " + firstNonEmpty(s.Name, s.ID, filepath.Base(file)),
		Identifier: &trIdentifer{System: TagSystem, Value: r.report.RunID},
	}
	tr.TestScript.Display = firstNonEmpty(title, filepath.Base(file))
	switch {
	case s.URL != "":
		tr.TestScript.Reference = s.URL
	case s.ID != "":
		tr.TestScript.Reference = "TestScript/" + s.ID
	}

	// setup: autocreate, then the setup actions.
	setupOK := true
	var setupActions []tsAction
	for _, f := range s.Fixture {
		if f.Autocreate {
			setupActions = append(setupActions, tsAction{Operation: &tsOperation{
				Type: &struct {
					System string `json:"system"`
					Code   string `json:"code"`
				}{Code: "create"}, SourceID: f.ID, Label: "autocreate " + f.ID}})
		}
	}
	if s.Setup != nil {
		setupActions = append(setupActions, s.Setup.Action...)
	}
	if len(setupActions) > 0 {
		c := r.begin("testscript."+sid+".setup", "setup of "+firstNonEmpty(title, sid), SuiteTestScript, "", Shall, specTestScript)
		acts, failed, warned := t.actions(ctx, c, setupActions, true)
		tr.Setup = &trActions{Action: acts}
		setupOK = failed == ""
		t.finishCheck(c, failed, warned)
	}

	for i, test := range s.Test {
		name := firstNonEmpty(test.Name, "test-"+strconv.Itoa(i+1))
		trt := trTest{Name: test.Name, Description: test.Description}
		c := r.begin("testscript."+sid+"."+scriptSlug(name), firstNonEmpty(test.Description, name), SuiteTestScript, "", Shall, specTestScript)
		if !setupOK {
			for _, a := range test.Action {
				trt.Action = append(trt.Action, skipped(a, "the setup failed"))
			}
			tr.Test = append(tr.Test, trt)
			c.skip("the setup failed")
			continue
		}
		acts, failed, warned := t.actions(ctx, c, test.Action, false)
		trt.Action = acts
		tr.Test = append(tr.Test, trt)
		t.finishCheck(c, failed, warned)
	}

	// teardown: the teardown actions, then autodelete.
	var teardown []tsAction
	if s.Teardown != nil {
		teardown = append(teardown, s.Teardown.Action...)
	}
	for _, f := range s.Fixture {
		if f.Autodelete {
			teardown = append(teardown, tsAction{Operation: &tsOperation{
				Type: &struct {
					System string `json:"system"`
					Code   string `json:"code"`
				}{Code: "delete"}, TargetID: f.ID, Label: "autodelete " + f.ID}})
		}
	}
	if len(teardown) > 0 {
		c := r.begin("testscript."+sid+".teardown", "teardown of "+firstNonEmpty(title, sid), SuiteTestScript, "", Should, specTestScript)
		acts, failed, _ := t.actions(ctx, c, teardown, false)
		tr.Teardown = &trActions{Action: acts}
		if failed != "" {
			c.fail("%s", failed)
		} else {
			c.pass()
		}
	}

	tr.Result = trPass
	if t.hardFail {
		tr.Result = trFail
	}
	score := 100.0
	if t.asserts > 0 {
		score = float64(t.passed) * 100 / float64(t.asserts)
	}
	tr.Score = json.Number(strconv.FormatFloat(score, 'f', -1, 64))
	tr.Issued = time.Now().UTC().Format(time.RFC3339)
	data, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		return
	}
	name := sid + ".json"
	for _, prev := range r.report.TestReports {
		if prev.Name == name {
			name = sid + "-" + strconv.Itoa(len(r.report.TestReports)) + ".json"
		}
	}
	r.report.TestReports = append(r.report.TestReports, TestReportFile{Script: file, Name: name, JSON: append(data, '\n')})
}

// finishCheck ends a setup or test check: a failed assert fails it as
// SHALL; when only warningOnly asserts failed, it fails as SHOULD, which
// is reported but does not fail the run.
func (t *tsRun) finishCheck(c *checkRun, failed, warned string) {
	switch {
	case failed != "":
		c.fail("%s", failed)
	case warned != "":
		c.check.Level = Should
		c.fail("warning only: %s", warned)
	default:
		c.pass()
	}
}

func skipped(a tsAction, why string) trAction {
	res := &trResult{Result: trSkip, Message: why}
	if a.Operation != nil {
		return trAction{Operation: res}
	}
	return trAction{Assert: res}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// actions runs actions in order; failed and warned describe the failures.
// In the setup, the first failure stops the rest.
func (t *tsRun) actions(ctx context.Context, c *checkRun, actions []tsAction, stopOnFail bool) (out []trAction, failed, warned string) {
	var fails, warns []string
	for i, a := range actions {
		if stopOnFail && len(fails) > 0 {
			out = append(out, skipped(a, "an earlier setup action failed"))
			continue
		}
		if a.Operation != nil {
			res := t.operation(ctx, c, a.Operation)
			out = append(out, trAction{Operation: res})
			if res.Result != trPass {
				t.hardFail = true
				fails = append(fails, fmt.Sprintf("operation %d (%s): %s", i+1, opName(a.Operation), res.Message))
			}
			continue
		}
		res := t.assert(a.Assert)
		out = append(out, trAction{Assert: res})
		t.asserts++
		label := firstNonEmpty(a.Assert.Label, a.Assert.Description, "assert "+strconv.Itoa(i+1))
		switch res.Result {
		case trPass:
			t.passed++
		case trWarning:
			warns = append(warns, label+": "+res.Message)
		default:
			t.hardFail = true
			fails = append(fails, label+": "+res.Message)
		}
	}
	return out, strings.Join(fails, "; "), strings.Join(warns, "; ")
}

func opName(op *tsOperation) string {
	if op.Label != "" {
		return op.Label
	}
	if op.Type != nil && op.Type.Code != "" {
		return op.Type.Code
	}
	return strings.ToUpper(op.Method)
}

var varRe = regexp.MustCompile(`\$\{([^}]*)\}`)

// subst replaces each ${name} by the variable's value; jsonText escapes
// the values for the inside of a JSON string.
func (t *tsRun) subst(s string, jsonText bool) (string, error) {
	var firstErr error
	out := varRe.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, err := t.variable(name)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return m
		}
		if jsonText {
			b, _ := json.Marshal(v)
			return string(b[1 : len(b)-1])
		}
		return v
	})
	return out, firstErr
}

// variable evaluates a variable now.
func (t *tsRun) variable(name string) (string, error) {
	i := slices.IndexFunc(t.script.Variable, func(v tsVariable) bool { return v.Name == name })
	if i < 0 {
		return "", fmt.Errorf("the variable %q is not defined", name)
	}
	v := t.script.Variable[i]
	switch {
	case v.HeaderField != "":
		src, err := t.source(v.SourceID)
		if err != nil {
			return "", fmt.Errorf("variable %q: %w", name, err)
		}
		if h := src.header.Get(v.HeaderField); h != "" {
			return h, nil
		}
	case v.Expression != "":
		src, err := t.source(v.SourceID)
		if err != nil {
			return "", fmt.Errorf("variable %q: %w", name, err)
		}
		res, err := t.eval(v.Expression, src)
		if err != nil {
			return "", fmt.Errorf("variable %q: %w", name, err)
		}
		if len(res) > 0 {
			return fhirpath.String(res[0]), nil
		}
	}
	if v.DefaultValue != "" {
		return v.DefaultValue, nil
	}
	return "", fmt.Errorf("the variable %q has no value", name)
}

// source is the fixture id names, or the last response when id is "".
func (t *tsRun) source(id string) (*tsFixture, error) {
	if id == "" {
		if t.last == nil {
			return nil, fmt.Errorf("there is no response yet")
		}
		return t.last, nil
	}
	f := t.fixtures[id]
	if f == nil {
		return nil, fmt.Errorf("no fixture or response %q", id)
	}
	return f, nil
}

// tree decodes a fixture's JSON, its variables substituted.
func (t *tsRun) tree(f *tsFixture) (any, error) {
	body := f.body
	if !f.isResponse {
		s, err := t.subst(string(body), true)
		if err != nil {
			return nil, err
		}
		body = []byte(s)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("the body is not JSON: %w", err)
	}
	return v, nil
}

// eval evaluates a FHIRPath expression (variables substituted) on a
// fixture or response.
func (t *tsRun) eval(expr string, f *tsFixture) ([]any, error) {
	expr, err := t.subst(expr, false)
	if err != nil {
		return nil, err
	}
	tree, err := t.tree(f)
	if err != nil {
		return nil, err
	}
	return fhirpath.Evaluate(tree, expr, fhirpath.Env{})
}

// operation runs an operation.
func (t *tsRun) operation(ctx context.Context, c *checkRun, op *tsOperation) *trResult {
	errorf := func(format string, args ...any) *trResult {
		return &trResult{Result: trError, Message: fmt.Sprintf(format, args...)}
	}
	code := ""
	if op.Type != nil {
		code = op.Type.Code
	}
	method := strings.ToUpper(op.Method)
	if method == "" {
		method = map[string]string{
			"create": http.MethodPost, "read": http.MethodGet, "vread": http.MethodGet, "update": http.MethodPut,
			"delete": http.MethodDelete, "search": http.MethodGet, "history": http.MethodGet,
			"transaction": http.MethodPost, "batch": http.MethodPost, "patch": http.MethodPatch,
		}[code]
	}
	if method == "" {
		return errorf("the operation has no method and its type %q is not one the kit runs (create, read, vread, update, delete, search, history, transaction, batch, patch)", code)
	}
	var source, target *tsFixture
	if op.SourceID != "" {
		if source = t.fixtures[op.SourceID]; source == nil {
			return errorf("no fixture %q (sourceId)", op.SourceID)
		}
	}
	if op.TargetID != "" {
		if target = t.fixtures[op.TargetID]; target == nil {
			return errorf("no fixture %q (targetId)", op.TargetID)
		}
	}
	// The body.
	var body []byte
	var bodyTree map[string]any
	if source != nil {
		tree, err := t.tree(source)
		if err != nil {
			return errorf("sourceId %q: %v", op.SourceID, err)
		}
		if m, ok := tree.(map[string]any); ok {
			bodyTree = m
		} else if code != "patch" {
			return errorf("sourceId %q is not a resource", op.SourceID)
		}
		if bodyTree == nil {
			text, err := t.subst(string(source.body), true)
			if err != nil {
				return errorf("sourceId %q: %v", op.SourceID, err)
			}
			body = bytes.TrimSpace([]byte(text))
		}
	}
	typ := op.Resource
	if typ == "" && bodyTree != nil && code != "transaction" && code != "batch" {
		typ, _ = bodyTree["resourceType"].(string)
	}
	// The target: the server's type and id.
	var tTyp, tID, tVid string
	if target != nil {
		tTyp, tID, tVid = target.typ, target.id, target.vid
		if tID == "" {
			if tree, err := t.tree(target); err == nil {
				if m, ok := tree.(map[string]any); ok {
					tTyp, _ = m["resourceType"].(string)
					tID, _ = m["id"].(string)
					if meta, ok := m["meta"].(map[string]any); ok {
						tVid, _ = meta["versionId"].(string)
					}
				}
			}
		}
		if typ == "" {
			typ = tTyp
		}
	}
	if bodyTree != nil {
		switch code {
		case "create":
			delete(bodyTree, "id")
		case "update":
			if tID != "" {
				bodyTree["id"] = tID
			}
		}
		if rt, _ := bodyTree["resourceType"].(string); rt == "Bundle" {
			if entries, ok := bodyTree["entry"].([]any); ok {
				for _, e := range entries {
					if em, ok := e.(map[string]any); ok {
						if res, ok := em["resource"].(map[string]any); ok {
							t.tag(res)
						}
					}
				}
			}
		} else if method == http.MethodPost || method == http.MethodPut {
			t.tag(bodyTree)
		}
		var err error
		if body, err = json.Marshal(bodyTree); err != nil {
			return errorf("%v", err)
		}
	}
	id := tID
	if id == "" && bodyTree != nil && code == "update" {
		id, _ = bodyTree["id"].(string)
	}
	params, err := t.subst(op.Params, false)
	if err != nil {
		return errorf("params: %v", err)
	}
	// The path.
	var path string
	switch {
	case op.URL != "":
		u, err := t.subst(op.URL, false)
		if err != nil {
			return errorf("url: %v", err)
		}
		base := t.r.base.String()
		switch {
		case u == base || strings.HasPrefix(u, base+"/") || strings.HasPrefix(u, base+"?"):
			path = strings.TrimPrefix(strings.TrimPrefix(u, base), "/")
		case strings.Contains(u, "://"):
			return errorf("the kit sends requests only to %s, not to %s", base, u)
		default:
			path = strings.TrimPrefix(u, "/")
		}
	case code == "transaction" || code == "batch":
		path = ""
	case params != "" && code != "vread" && code != "history":
		if typ == "" {
			return errorf("the operation names no resource type (resource, or a sourceId/targetId)")
		}
		path = typ + params
	default:
		if typ == "" {
			return errorf("the operation names no resource type (resource, or a sourceId/targetId)")
		}
		needID := func() bool { return id != "" }
		switch code {
		case "read", "update", "delete", "patch":
			if !needID() {
				return errorf("%s needs a targetId whose resource has an id on the server", code)
			}
			path = typ + "/" + url.PathEscape(id)
		case "vread":
			if !needID() || tVid == "" {
				return errorf("vread needs a targetId with an id and a versionId")
			}
			path = typ + "/" + url.PathEscape(id) + "/_history/" + url.PathEscape(tVid) + params
		case "history":
			if id != "" {
				path = typ + "/" + url.PathEscape(id) + "/_history" + params
			} else {
				path = typ + "/_history" + params
			}
		default:
			path = typ
		}
	}
	header := http.Header{}
	if op.ContentType != "" {
		header.Set("Content-Type", mimeOf(op.ContentType))
	} else if code == "patch" && bodyTree == nil {
		header.Set("Content-Type", "application/json-patch+json")
	}
	if op.Accept != "" {
		header.Set("Accept", mimeOf(op.Accept))
	}
	for _, h := range op.RequestHeader {
		v, err := t.subst(h.Value, false)
		if err != nil {
			return errorf("requestHeader %s: %v", h.Field, err)
		}
		header.Set(h.Field, v)
	}
	resp := c.do(ctx, method, path, header, body)
	t.lastReq.method, t.lastReq.url, t.lastReq.header = method, resp.ex.URL, header
	if resp.err != nil {
		t.last = nil
		return errorf("%v", resp.err)
	}
	rf := &tsFixture{body: resp.body, header: resp.header, status: resp.status, isResponse: true}
	t.last = rf
	if op.ResponseID != "" {
		t.fixtures[op.ResponseID] = rf
	}
	// Track what the request created.
	if resp.status == http.StatusCreated && (method == http.MethodPost || method == http.MethodPut) && code != "transaction" && code != "batch" {
		ctyp, cid, cvid := locationParts(resp.header.Get("Location"))
		if resp.res != nil && resp.res.ID != "" {
			ctyp, cid = resp.res.Type, resp.res.ID
		}
		if ctyp != "" && cid != "" {
			t.r.track(ctyp, cid)
			rf.typ, rf.id, rf.vid = ctyp, cid, cvid
			if source != nil {
				source.typ, source.id, source.vid = ctyp, cid, cvid
			}
		}
	}
	if (code == "transaction" || code == "batch") && resp.status == http.StatusOK && resp.res != nil && resp.res.Type == "Bundle" {
		var b struct {
			Entry []struct {
				Response struct {
					Status   string `json:"status"`
					Location string `json:"location"`
				} `json:"response"`
			} `json:"entry"`
		}
		if json.Unmarshal(resp.body, &b) == nil {
			for _, e := range b.Entry {
				if strings.HasPrefix(e.Response.Status, "201") {
					ctyp, cid, _ := locationParts(e.Response.Location)
					t.r.track(ctyp, cid)
				}
			}
		}
	}
	if method == http.MethodPut && resp.status == http.StatusOK && target != nil {
		if _, _, v := locationParts(resp.header.Get("Location")); v != "" {
			target.vid = v
		} else if et := strings.Trim(strings.TrimPrefix(resp.header.Get("ETag"), "W/"), `"`); et != "" {
			target.vid = et
		}
	}
	if method == http.MethodDelete && resp.status < 300 && tID != "" {
		t.r.markDeleted(typ, tID)
	}
	return &trResult{Result: trPass, Message: fmt.Sprintf("%s %s answered %d", method, resp.ex.URL, resp.status)}
}

// tag puts the run's tag on a resource the kit sends.
func (t *tsRun) tag(res map[string]any) {
	tag := map[string]any{"system": TagSystem, "code": t.r.report.RunID}
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		res["meta"] = meta
	}
	tags, _ := meta["tag"].([]any)
	meta["tag"] = append(tags, tag)
}

// locationParts reads [base/]Type/id[/_history/vid].
func locationParts(loc string) (typ, id, vid string) {
	if loc == "" {
		return "", "", ""
	}
	if u, err := url.Parse(loc); err == nil {
		loc = u.Path
	}
	parts := strings.Split(strings.Trim(loc, "/"), "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		vid = parts[n-1]
		parts = parts[:n-2]
	}
	if n := len(parts); n >= 2 {
		typ, id = parts[n-2], parts[n-1]
	}
	return typ, id, vid
}

func mimeOf(s string) string {
	switch strings.ToLower(s) {
	case "json":
		return "application/fhir+json"
	case "xml":
		return "application/fhir+xml"
	case "ttl":
		return "text/turtle"
	}
	return s
}

// responseCodes are the codes of assert.response.
var responseCodes = map[string]int{
	"okay": 200, "created": 201, "noContent": 204, "notModified": 304, "bad": 400, "forbidden": 403,
	"notFound": 404, "methodNotAllowed": 405, "conflict": 409, "gone": 410, "preconditionFailed": 412,
	"unprocessable": 422,
}

// assert evaluates an assert.
func (t *tsRun) assert(a *tsAssert) *trResult {
	res := func(ok bool, format string, args ...any) *trResult {
		msg := fmt.Sprintf(format, args...)
		switch {
		case ok:
			return &trResult{Result: trPass, Message: msg}
		case a.WarningOnly:
			return &trResult{Result: trWarning, Message: msg}
		}
		return &trResult{Result: trFail, Message: msg}
	}
	errorf := func(format string, args ...any) *trResult {
		if a.WarningOnly {
			return &trResult{Result: trWarning, Message: fmt.Sprintf(format, args...)}
		}
		return &trResult{Result: trError, Message: fmt.Sprintf(format, args...)}
	}
	value, err := t.subst(a.Value, false)
	if err != nil {
		return errorf("value: %v", err)
	}
	if a.Direction == "request" {
		switch {
		case a.HeaderField != "":
			got := t.lastReq.header.Get(a.HeaderField)
			ok, err := compareOp(got, a.Operator, value, got != "")
			if err != nil {
				return errorf("%v", err)
			}
			return res(ok, "request header %s is %q (%s %q)", a.HeaderField, got, opOr(a.Operator), value)
		case a.RequestMethod != "":
			return res(strings.EqualFold(t.lastReq.method, a.RequestMethod), "the request method is %s", t.lastReq.method)
		}
		return errorf("the kit asserts on requests only with headerField or requestMethod")
	}
	if a.RequestMethod != "" {
		return res(strings.EqualFold(t.lastReq.method, a.RequestMethod), "the request method is %s", t.lastReq.method)
	}
	if a.RequestURL != "" {
		u, err := t.subst(a.RequestURL, false)
		if err != nil {
			return errorf("%v", err)
		}
		ok, err := compareOp(t.lastReq.url, a.Operator, u, true)
		if err != nil {
			return errorf("%v", err)
		}
		return res(ok, "the request URL is %s", t.lastReq.url)
	}
	src, err := t.source(a.SourceID)
	if err != nil {
		return errorf("%v", err)
	}
	switch {
	case a.Response != "":
		want, ok := responseCodes[a.Response]
		if !ok {
			return errorf("response %q is not an R4 assert-response-code-types code", a.Response)
		}
		if !src.isResponse {
			return errorf("%q is not a response", a.SourceID)
		}
		ok, err := compareOp(strconv.Itoa(src.status), a.Operator, strconv.Itoa(want), true)
		if err != nil {
			return errorf("%v", err)
		}
		return res(ok, "the status is %d (%s %s = %d)", src.status, opOr(a.Operator), a.Response, want)
	case a.ResponseCode != "":
		if !src.isResponse {
			return errorf("%q is not a response", a.SourceID)
		}
		ok, err := compareOp(strconv.Itoa(src.status), a.Operator, a.ResponseCode, true)
		if err != nil {
			return errorf("%v", err)
		}
		return res(ok, "the status is %d (%s %s)", src.status, opOr(a.Operator), a.ResponseCode)
	case a.ContentType != "":
		got := ""
		if src.header != nil {
			got = src.header.Get("Content-Type")
		}
		mt, _, _ := mime.ParseMediaType(got)
		want := mimeOf(a.ContentType)
		ok := mt == want || (a.ContentType == "json" && strings.Contains(mt, "json")) || (a.ContentType == "xml" && strings.Contains(mt, "xml"))
		if a.Operator == "notEquals" {
			ok = !ok
		}
		return res(ok, "the content type is %q", got)
	case a.HeaderField != "":
		got := ""
		present := false
		if src.header != nil {
			got = src.header.Get(a.HeaderField)
			_, present = src.header[http.CanonicalHeaderKey(a.HeaderField)]
		}
		ok, err := compareOp(got, a.Operator, value, present)
		if err != nil {
			return errorf("%v", err)
		}
		return res(ok, "header %s is %q (%s %q)", a.HeaderField, got, opOr(a.Operator), value)
	case a.Resource != "":
		tree, err := t.tree(src)
		if err != nil {
			return errorf("%v", err)
		}
		m, _ := tree.(map[string]any)
		got, _ := m["resourceType"].(string)
		ok, err := compareOp(got, a.Operator, a.Resource, got != "")
		if err != nil {
			return errorf("%v", err)
		}
		return res(ok, "the resource is a %q", got)
	case a.MinimumID != "":
		min := t.fixtures[a.MinimumID]
		if min == nil {
			return errorf("no fixture %q (minimumId)", a.MinimumID)
		}
		want, err := t.tree(min)
		if err != nil {
			return errorf("minimumId: %v", err)
		}
		got, err := t.tree(src)
		if err != nil {
			return errorf("%v", err)
		}
		missing := contains(got, want, "", true)
		if a.Operator == "notEquals" {
			return res(missing != "", "the response contains every element of %q", a.MinimumID)
		}
		if missing == "" {
			return res(true, "the response contains every element of %q", a.MinimumID)
		}
		return res(false, "the response lacks %s of %q", missing, a.MinimumID)
	case a.Expression != "":
		got, err := t.eval(a.Expression, src)
		if err != nil {
			return errorf("%v", err)
		}
		if a.CompareToSourceID != "" {
			other, err := t.source(a.CompareToSourceID)
			if err != nil {
				return errorf("compareToSourceId: %v", err)
			}
			if a.CompareToSourceExpression == "" {
				return errorf("compareToSourceId needs compareToSourceExpression")
			}
			want, err := t.eval(a.CompareToSourceExpression, other)
			if err != nil {
				return errorf("%v", err)
			}
			ok, err := compareOp(joined(got), a.Operator, joined(want), len(got) > 0)
			if err != nil {
				return errorf("%v", err)
			}
			return res(ok, "%s is %s; %s on %s is %s (%s)", a.Expression, joined(got), a.CompareToSourceExpression, a.CompareToSourceID, joined(want), opOr(a.Operator))
		}
		if (a.Operator == "" && a.Value == "") || a.Operator == "eval" {
			b, ok, err := fhirpath.Truth(got)
			if err != nil {
				return errorf("%v", err)
			}
			return res(ok && b, "%s evaluates to %s", a.Expression, joined(got))
		}
		ok, err := compareOp(joined(got), a.Operator, value, len(got) > 0)
		if err != nil {
			return errorf("%v", err)
		}
		return res(ok, "%s is %s (%s %q)", a.Expression, joined(got), opOr(a.Operator), value)
	}
	return errorf("the assert names nothing the kit checks (response, responseCode, contentType, headerField, resource, minimumId, expression)")
}

func opOr(op string) string {
	if op == "" {
		return "equals"
	}
	return op
}

func joined(c []any) string {
	s := make([]string, len(c))
	for i, v := range c {
		s[i] = fhirpath.String(v)
	}
	return strings.Join(s, ",")
}

// compareOp applies an assert operator; present tells whether the actual
// value exists, for empty and notEmpty.
func compareOp(got, op, want string, present bool) (bool, error) {
	switch op {
	case "", "equals":
		return present && got == want, nil
	case "notEquals":
		return got != want, nil
	case "in", "notIn":
		in := slices.Contains(splitList(want), got)
		return in == (op == "in"), nil
	case "greaterThan", "lessThan":
		c, ok := compareText(got, want)
		if !ok || !present {
			return false, nil
		}
		return (c > 0) == (op == "greaterThan") && c != 0, nil
	case "empty":
		return !present || got == "", nil
	case "notEmpty":
		return present && got != "", nil
	case "contains":
		return present && strings.Contains(got, want), nil
	case "notContains":
		return !strings.Contains(got, want), nil
	case "eval":
		return got == "true", nil
	}
	return false, fmt.Errorf("the operator %q is not an R4 assert-operator-codes code", op)
}

func splitList(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// compareText compares as numbers when both are, else as text.
func compareText(a, b string) (int, bool) {
	x, okx := new(big.Rat).SetString(a)
	y, oky := new(big.Rat).SetString(b)
	if okx && oky {
		return x.Cmp(y), true
	}
	return strings.Compare(a, b), true
}

// contains returns "" when got has every element of want (minimumId), else
// the path of the first missing one. At the top, id, meta and text are
// the server's and are not compared.
func contains(got, want any, path string, top bool) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return firstNonEmpty(path, "the resource")
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if top && (k == "id" || k == "meta" || k == "text") {
				continue
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			if m := contains(g[k], w[k], p, false); m != "" {
				return m
			}
		}
		return ""
	case []any:
		g, _ := got.([]any)
		for i, wi := range w {
			found := false
			for _, gi := range g {
				if contains(gi, wi, "", false) == "" {
					found = true
					break
				}
			}
			if !found {
				return fmt.Sprintf("%s[%d]", path, i)
			}
		}
		return ""
	}
	if c, ok := numbersEqual(got, want); ok {
		if !c {
			return path
		}
		return ""
	}
	if fhirpath.String(got) != fhirpath.String(want) || got == nil {
		return path
	}
	return ""
}

func numbersEqual(a, b any) (bool, bool) {
	x, okx := a.(json.Number)
	y, oky := b.(json.Number)
	if !okx || !oky {
		return false, false
	}
	rx, ok1 := new(big.Rat).SetString(x.String())
	ry, ok2 := new(big.Rat).SetString(y.String())
	if !ok1 || !ok2 {
		return x == y, true
	}
	return rx.Cmp(ry) == 0, true
}
