package kit

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// SuiteInfusion is the suite of the infusion data set: ketamine,
// lidocaine, gabapentinoid and vitamin orders, their administrations, pain
// and vital-sign observations.
const SuiteInfusion = "infusion"

// CourseDefinition is the canonical URL of this project's $course
// operation; the finding checks run only against a server that declares it
// on MedicationRequest.
const CourseDefinition = "https://infusion.example.org/fhir/OperationDefinition/course"

// The specification pages the infusion checks cite.
const (
	specDetectedIssue = "https://hl7.org/fhir/R4/detectedissue.html"
	specOperations    = "https://hl7.org/fhir/R4/operations.html"
)

// findingSample is the infusion sample the finding checks use: an IV
// gabapentin order, which no known product allows.
const findingSample = "medicationrequest-gabapentin-iv"

//go:embed samples/infusion/*.json
var infusionSamples embed.FS

// infusionSample is one resource of the infusion data set.
type infusionSample struct {
	name string // the file name without .json, e.g. medicationrequest-ketamine-crps
	typ  string
	body []byte // as sent: tagged with the run id
}

// infusionSamples returns the infusion data set in a stable order (orders
// first, then administrations, then observations), each tagged with the
// run id; the meta the sample carries (profiles) is kept.
func (r *runner) infusionSamples() ([]infusionSample, error) {
	entries, err := infusionSamples.ReadDir("samples/infusion")
	if err != nil {
		return nil, fmt.Errorf("kit: the infusion samples: %w", err)
	}
	order := map[string]int{"MedicationRequest": 0, "MedicationAdministration": 1, "Observation": 2}
	var out []infusionSample
	for _, e := range entries {
		data, err := infusionSamples.ReadFile("samples/infusion/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("kit: the infusion samples: %w", err)
		}
		res, err := decodeNumbers(data)
		if err != nil {
			return nil, fmt.Errorf("kit: the infusion sample %s: %w", e.Name(), err)
		}
		obj, _ := res.(map[string]any)
		typ, _ := obj["resourceType"].(string)
		if typ == "" {
			return nil, fmt.Errorf("kit: the infusion sample %s has no resourceType", e.Name())
		}
		delete(obj, "id")
		meta, _ := obj["meta"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		tags, _ := meta["tag"].([]any)
		meta["tag"] = append(tags, map[string]any{"system": TagSystem, "code": r.report.RunID})
		obj["meta"] = meta
		body, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("kit: the infusion sample %s: %w", e.Name(), err)
		}
		out = append(out, infusionSample{name: strings.TrimSuffix(e.Name(), ".json"), typ: typ, body: body})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if order[out[i].typ] != order[out[j].typ] {
			return order[out[i].typ] < order[out[j].typ]
		}
		return out[i].name < out[j].name
	})
	return out, nil
}

// decodeNumbers decodes JSON keeping each number as its text
// (json.Number), so that 0.50 stays 0.50.
func decodeNumbers(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// infusionSuite creates each resource of the infusion data set, reads it
// back and checks it round-trips; then, against a server that declares
// this project's $course operation and DetectedIssue, checks that an IV
// gabapentin order raises a finding.
func (r *runner) infusionSuite(ctx context.Context) {
	samples, err := r.infusionSamples()
	if err != nil {
		r.begin("infusion.samples", "the kit reads its infusion data set", SuiteInfusion, "", Shall, specHTTP+"#create").fail("%v", err)
		return
	}
	caps := map[string]capResource{}
	for _, cr := range r.caps.resources() {
		caps[cr.Type] = cr
	}
	findingOrder := ""
	for _, s := range samples {
		id := r.roundTrip(ctx, s, caps[s.typ])
		if s.name == findingSample {
			findingOrder = id
		}
	}
	r.findingChecks(ctx, findingOrder)
}

// roundTrip runs infusion.roundtrip.<sample>: create, read back, compare.
// It returns the id of the created resource, or "".
func (r *runner) roundTrip(ctx context.Context, s infusionSample, cr capResource) string {
	short := s.name[strings.Index(s.name, "-")+1:]
	c := r.begin("infusion.roundtrip."+short,
		"the "+short+" "+s.typ+" reads back exactly as created: every element, decimal text, extensions and primitive extensions",
		SuiteInfusion, s.typ, Should, specHTTP+"#create")
	switch {
	case cr.Type == "":
		c.skip("the CapabilityStatement does not declare %s", s.typ)
		return ""
	case !cr.supports("create") || !cr.supports("read"):
		c.skip("the CapabilityStatement does not declare both create and read for %s", s.typ)
		return ""
	}
	resp := c.do(ctx, http.MethodPost, s.typ, http.Header{"Prefer": {"return=representation"}}, s.body)
	if resp.err != nil {
		c.fail("%v", resp.err)
		return ""
	}
	id := r.createdID(s.typ, resp)
	r.track(s.typ, id)
	if resp.status != http.StatusCreated {
		c.fail("CapabilityStatement says %s supports create; the server answered %d to the %s sample", s.typ, resp.status, short)
		return id
	}
	if id == "" {
		c.fail("create gave no id (neither in the body nor in a Location header on %s)", r.base.Host)
		return ""
	}
	p := s.typ + "/" + url.PathEscape(id)
	resp = c.do(ctx, http.MethodGet, p, nil, nil)
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
		return id
	case resp.status != http.StatusOK:
		c.fail("CapabilityStatement says %s supports read; the server answered %d to GET %s", s.typ, resp.status, p)
		return id
	}
	sent, _ := decodeNumbers(s.body)
	got, err := decodeNumbers(resp.body)
	if err != nil {
		c.fail("GET %s: the body is not JSON: %v", p, err)
		return id
	}
	if diffs := roundTripDiff(sent, got, r.report.RunID); len(diffs) > 0 {
		more := ""
		if len(diffs) > 5 {
			more = fmt.Sprintf(" (and %d more)", len(diffs)-5)
			diffs = diffs[:5]
		}
		c.fail("GET %s does not return what was created: %s%s", p, strings.Join(diffs, "; "), more)
		return id
	}
	c.pass()
	return id
}

// createdID finds the id of a created resource: the body's id, else the
// [id] of a Location header on the base's host.
func (r *runner) createdID(typ string, resp response) string {
	if resp.res != nil && resp.res.Type == typ && resp.res.ID != "" {
		return resp.res.ID
	}
	loc := resp.header.Get("Location")
	if loc == "" {
		return ""
	}
	u, err := r.base.Parse(loc)
	if err != nil || u.Host != r.base.Host {
		return ""
	}
	rest, ok := strings.CutPrefix(u.Path, strings.TrimRight(r.base.Path, "/")+"/"+typ+"/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// roundTripDiff lists what of sent is not in got: every element sent must
// come back with the same value (numbers compared as their JSON text),
// except id and meta.versionId/meta.lastUpdated (server-set); meta.tag
// must contain the run's tag. Elements the server adds are allowed.
func roundTripDiff(sent, got any, runID string) []string {
	s, _ := sent.(map[string]any)
	g, ok := got.(map[string]any)
	if !ok {
		return []string{"the response is not a JSON object"}
	}
	var diffs []string
	for _, k := range sortedKeys(s) {
		switch k {
		case "id":
			continue
		case "meta":
			sm, _ := s[k].(map[string]any)
			gm, ok := g[k].(map[string]any)
			if !ok {
				diffs = append(diffs, "meta is missing")
				continue
			}
			for _, mk := range sortedKeys(sm) {
				switch mk {
				case "versionId", "lastUpdated":
				case "tag":
					tags, _ := gm["tag"].([]any)
					if !slices.ContainsFunc(tags, func(t any) bool {
						m, _ := t.(map[string]any)
						return m["system"] == TagSystem && m["code"] == runID
					}) {
						diffs = append(diffs, fmt.Sprintf("meta.tag lacks the kit's tag %s|%s", TagSystem, runID))
					}
				default:
					diffs = append(diffs, compareJSON("meta."+mk, sm[mk], gm[mk])...)
				}
			}
		default:
			diffs = append(diffs, compareJSON(k, s[k], g[k])...)
		}
	}
	return diffs
}

// compareJSON lists where got differs from want at path p. Objects may
// carry more members in got; arrays must have the same items in order.
func compareJSON(p string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: sent an object, got %s", p, describe(got))}
		}
		var out []string
		for _, k := range sortedKeys(w) {
			out = append(out, compareJSON(p+"."+k, w[k], g[k])...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: sent an array, got %s", p, describe(got))}
		}
		if len(g) != len(w) {
			return []string{fmt.Sprintf("%s: sent %d items, got %d", p, len(w), len(g))}
		}
		var out []string
		for i := range w {
			out = append(out, compareJSON(fmt.Sprintf("%s[%d]", p, i), w[i], g[i])...)
		}
		return out
	case json.Number:
		g, ok := got.(json.Number)
		if !ok || g != w {
			return []string{fmt.Sprintf("%s: sent %s, got %s", p, w, describe(got))}
		}
		return nil
	default:
		if got != want {
			return []string{fmt.Sprintf("%s: sent %s, got %s", p, describe(want), describe(got))}
		}
		return nil
	}
}

// describe renders a JSON value for a message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case json.Number:
		return string(x)
	case string:
		if len(x) > 60 {
			x = x[:60] + "…"
		}
		return fmt.Sprintf("%q", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return fmt.Sprint(x)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// findingChecks runs infusion.finding.gabapentin-iv and
// infusion.course.gabapentin-iv when the server declares this project's
// $course operation and DetectedIssue; they are skipped otherwise.
func (r *runner) findingChecks(ctx context.Context, orderID string) {
	finding := r.begin("infusion.finding.gabapentin-iv",
		"an IV gabapentin order raises a DetectedIssue implicating it, found by DetectedIssue?implicated=",
		SuiteInfusion, "DetectedIssue", Shall, specDetectedIssue)
	course := r.begin("infusion.course.gabapentin-iv",
		"GET [base]/MedicationRequest/[id]/$course answers a Parameters",
		SuiteInfusion, "MedicationRequest", Shall, specOperations)
	declared, why := r.declaresFindings(ctx)
	if !declared {
		finding.skip("%s", why)
		course.skip("%s", why)
		return
	}
	if orderID == "" {
		reason := "the IV gabapentin order could not be created (see infusion.roundtrip.gabapentin-iv)"
		finding.skip("%s", reason)
		course.skip("%s", reason)
		return
	}
	ref := "MedicationRequest/" + orderID
	q := url.Values{"implicated": {ref}}
	resp := finding.do(ctx, http.MethodGet, "DetectedIssue?"+q.Encode(), nil, nil)
	switch {
	case resp.err != nil:
		finding.fail("%v", resp.err)
	case resp.status != http.StatusOK:
		finding.fail("CapabilityStatement says DetectedIssue supports search-type; the server answered %d to DetectedIssue?implicated=%s", resp.status, ref)
	case resp.res == nil || resp.res.Type != "Bundle":
		finding.fail("DetectedIssue?implicated=%s did not answer a Bundle", ref)
	case !implicates(resp.body, ref):
		finding.fail("no DetectedIssue implicating %s was found: an IV gabapentin order is the expected finding", ref)
	default:
		finding.pass()
	}
	p := "MedicationRequest/" + url.PathEscape(orderID) + "/$course"
	resp = course.do(ctx, http.MethodGet, p, nil, nil)
	switch {
	case resp.err != nil:
		course.fail("%v", resp.err)
	case resp.status != http.StatusOK:
		course.fail("CapabilityStatement says MedicationRequest supports $course; the server answered %d to GET %s", resp.status, p)
	case resp.res == nil || resp.res.Type != "Parameters":
		course.fail("GET %s did not answer a Parameters", p)
	default:
		course.pass()
	}
}

// implicates reports whether a search Bundle holds a DetectedIssue whose
// implicated names ref (also as a versioned or absolute reference).
func implicates(bundle []byte, ref string) bool {
	var b struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				Implicated   []struct {
					Reference string `json:"reference"`
				} `json:"implicated"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if json.Unmarshal(bundle, &b) != nil {
		return false
	}
	for _, e := range b.Entry {
		if e.Resource.ResourceType != "DetectedIssue" {
			continue
		}
		for _, im := range e.Resource.Implicated {
			r := im.Reference
			if i := strings.Index(r, "/_history/"); i >= 0 {
				r = r[:i]
			}
			if r == ref || strings.HasSuffix(r, "/"+ref) {
				return true
			}
		}
	}
	return false
}

// declaresFindings reports whether the CapabilityStatement declares the
// $course operation (by its definition) on MedicationRequest and
// DetectedIssue with search by implicated; otherwise the reason.
func (r *runner) declaresFindings(ctx context.Context) (bool, string) {
	resp := r.do(ctx, nil, http.MethodGet, "metadata", nil, nil)
	if resp.err != nil || resp.status != http.StatusOK {
		return false, "the CapabilityStatement could not be read again"
	}
	var cs struct {
		Rest []struct {
			Mode     string `json:"mode"`
			Resource []struct {
				Type      string `json:"type"`
				Operation []struct {
					Name       string `json:"name"`
					Definition string `json:"definition"`
				} `json:"operation"`
				SearchParam []struct {
					Name string `json:"name"`
				} `json:"searchParam"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if json.Unmarshal(resp.body, &cs) != nil {
		return false, "the CapabilityStatement could not be read again"
	}
	course, issue := false, false
	for _, rest := range cs.Rest {
		if rest.Mode != "server" && rest.Mode != "" {
			continue
		}
		for _, res := range rest.Resource {
			switch res.Type {
			case "MedicationRequest":
				for _, op := range res.Operation {
					if op.Definition == CourseDefinition {
						course = true
					}
				}
			case "DetectedIssue":
				for _, sp := range res.SearchParam {
					if sp.Name == "implicated" {
						issue = true
					}
				}
			}
		}
	}
	switch {
	case !course:
		return false, "the CapabilityStatement does not declare the $course operation (" + CourseDefinition + ") on MedicationRequest"
	case !issue:
		return false, "the CapabilityStatement does not declare DetectedIssue with the search parameter implicated"
	}
	return true, ""
}
