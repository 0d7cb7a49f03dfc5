package kit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// IDSystem is the identifier system of the identifiers the kit puts on
// the resources of the search and bundles suites.
const IDSystem = "https://infusion.example.org/fhir/conformance-kit-id"

// searchTypes are the search parameter types the search suite tests.
var searchTypes = []string{"token", "reference", "date", "string", "quantity", "number", "uri", "composite"}

// build returns the kit's sample of typ, tagged with the run id, with the
// elements of mods set (a nil value removes the element).
func (r *runner) build(typ string, mods map[string]any) ([]byte, map[string]any, bool) {
	data, ok := r.sample(typ, "", nil)
	if !ok {
		return nil, nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		return nil, nil, false
	}
	for k, v := range mods {
		switch meta, _ := res["meta"].(map[string]any); {
		case v == nil:
			delete(res, k)
		case k == "meta" && meta != nil:
			// merged: the run's tag stays
			for mk, mv := range v.(map[string]any) {
				if tags, ok := meta[mk].([]any); ok && mk == "tag" {
					meta[mk] = append(tags, mv.([]any)...)
				} else {
					meta[mk] = mv
				}
			}
		default:
			res[k] = v
		}
	}
	out, err := json.Marshal(res)
	return out, res, err == nil
}

// searchPair is data built to match the searches of a type and data built
// not to match them.
type searchPair struct {
	match, other     map[string]any // as sent, with the ids the server gave
	matchID, otherID string
}

// searchFixtures returns, for a type, the pairs of modifications that
// make the matching and the non-matching resources; targets has, by
// type, a reference to the first matching resource the run created of
// that type ("MedicationRequest/id"), and selfRef stands for the first
// matching resource of typ itself (withSelf replaces it once created).
// Together the matching resources give every standard R4 search parameter
// of the type a value the non-matching one does not have (or has none
// of). References may name resources that do not exist (kit-<run>-…):
// servers store them as they are.
func (r *runner) searchFixtures(typ string, targets map[string]string) [][2]map[string]any {
	target := targets["MedicationRequest"]
	run := r.report.RunID
	ident := func(s string) []any { return []any{map[string]any{"system": IDSystem, "value": run + "-" + s}} }
	ref := func(t, s string) map[string]any { return map[string]any{"reference": t + "/kit-" + run + "-" + s} }
	refs := func(t, s string) []any { return []any{ref(t, s)} }
	subject := func(s string) map[string]any { return map[string]any{"reference": "Patient/" + run + "-" + s} }
	coding := func(system, code string) map[string]any {
		return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
	}
	const rxnorm, loinc, ucum, sct = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://loinc.org", "http://unitsofmeasure.org", "http://snomed.info/sct"
	qty := func(v int, code string) map[string]any {
		return map[string]any{"value": v, "unit": code, "system": ucum, "code": code}
	}
	cat := func(code string) []any {
		return []any{coding("http://terminology.hl7.org/CodeSystem/observation-category", code)}
	}
	absent := func(code string) map[string]any {
		return coding("http://terminology.hl7.org/CodeSystem/data-absent-reason", code)
	}
	// meta the matching resource has and the other has not: _tag,
	// _security, _profile, _source
	meta := map[string]any{
		"tag":      []any{map[string]any{"system": TagSystem + "-match", "code": run}},
		"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST"}},
		"profile":  []any{"http://hl7.org/fhir/StructureDefinition/" + typ},
		"source":   "https://infusion.example.org/fhir/conformance-kit#" + run,
	}
	switch typ {
	case "Observation":
		m := map[string]any{"meta": meta, "identifier": ident("match"), "status": "final", "code": coding(loinc, "72514-3"), "category": cat("survey"),
			"subject": subject("a"), "effectiveDateTime": "2024-01-15T10:30:00Z", "valueInteger": nil, "valueQuantity": qty(4, "{score}"),
			"encounter": ref("Encounter", "e1"), "performer": refs("Practitioner", "p1"), "device": ref("Device", "d1"), "focus": refs("Group", "g1"),
			"derivedFrom": refs("Observation", "o1"), "hasMember": refs("Observation", "o2"), "partOf": refs("MedicationAdministration", "ma1"),
			"specimen": ref("Specimen", "s1"), "method": coding(sct, "272391002"),
			"component": []any{
				map[string]any{"code": coding(loinc, "8480-6"), "valueQuantity": qty(120, "mm[Hg]")},
				map[string]any{"code": coding(loinc, "8462-4"), "dataAbsentReason": absent("asked-unknown")},
			}}
		o := map[string]any{"identifier": ident("other"), "status": "preliminary", "code": coding(loinc, "38208-5"), "category": cat("exam"),
			"subject": subject("b"), "effectiveDateTime": "2019-06-01T08:00:00Z", "valueInteger": nil, "valueQuantity": qty(9, "{score}"),
			"encounter": ref("Encounter", "e2"), "performer": refs("Practitioner", "p2"), "device": ref("Device", "d2"), "method": coding(sct, "129265001"),
			"component": []any{map[string]any{"code": coding(loinc, "9279-1"), "valueQuantity": qty(16, "/min")}}}
		if target != "" {
			m["basedOn"] = []any{map[string]any{"reference": target}}
		}
		if ma := targets["MedicationAdministration"]; ma != "" {
			m["partOf"] = []any{map[string]any{"reference": ma}}
		}
		// derived from the first match: for _revinclude and _has
		m2 := map[string]any{"identifier": ident("match-string"), "valueInteger": nil, "valueString": "Kit pain diary " + run,
			"derivedFrom": []any{map[string]any{"reference": selfRef}}}
		o2 := map[string]any{"identifier": ident("other-string"), "valueInteger": nil, "valueString": "Other note " + run}
		m3 := map[string]any{"identifier": ident("match-concept"), "valueInteger": nil, "valueCodeableConcept": coding(sct, "373066001"),
			"component": []any{map[string]any{"code": coding(loinc, "75325-1"), "valueCodeableConcept": coding(sct, "22253000")}}}
		o3 := map[string]any{"identifier": ident("other-concept"), "valueInteger": nil, "valueCodeableConcept": coding(sct, "373067005"),
			"component": []any{map[string]any{"code": coding(loinc, "75325-1"), "valueCodeableConcept": coding(sct, "161891005")}}}
		m4 := map[string]any{"identifier": ident("match-date"), "valueInteger": nil, "valueDateTime": "2023-03-10T09:00:00Z"}
		o4 := map[string]any{"identifier": ident("other-date"), "valueInteger": nil, "valueDateTime": "2018-07-20T09:00:00Z"}
		m5 := map[string]any{"identifier": ident("match-absent"), "valueInteger": nil, "dataAbsentReason": absent("not-performed")}
		o5 := map[string]any{"identifier": ident("other-absent"), "valueInteger": nil, "dataAbsentReason": absent("error")}
		return [][2]map[string]any{{m, o}, {m2, o2}, {m3, o3}, {m4, o4}, {m5, o5}}
	case "MedicationRequest":
		m := map[string]any{"meta": meta, "identifier": ident("match"), "status": "active", "intent": "order", "subject": subject("a"), "authoredOn": "2024-01-15",
			"medicationCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": rxnorm, "code": "6130"}}, "text": "ketamine 0.5 mg/kg IV infusion"},
			"category":                  []any{coding("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "inpatient")}, "priority": "urgent",
			"encounter": ref("Encounter", "e1"), "requester": ref("Practitioner", "p1"), "performer": ref("Practitioner", "p2"),
			"performerType": coding(sct, "158965000"), "dispenseRequest": map[string]any{"performer": ref("Organization", "org1")},
			"dosageInstruction": []any{map[string]any{"text": "over 4 hours", "timing": map[string]any{"event": []any{"2024-01-15T08:00:00Z"}}}}}
		o := map[string]any{"identifier": ident("other"), "status": "on-hold", "intent": "plan", "subject": subject("b"), "authoredOn": "2019-06-01",
			"medicationCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": rxnorm, "code": "6387"}}, "text": "lidocaine IV infusion"},
			"category":                  []any{coding("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "outpatient")}, "priority": "routine",
			"encounter": ref("Encounter", "e2"), "requester": ref("Practitioner", "p3"),
			"dosageInstruction": []any{map[string]any{"text": "over 2 hours", "timing": map[string]any{"event": []any{"2019-06-01T08:00:00Z"}}}}}
		m2 := map[string]any{"identifier": ident("match-medication"), "medicationCodeableConcept": nil, "medicationReference": ref("Medication", "m1")}
		o2 := map[string]any{"identifier": ident("other-medication"), "medicationCodeableConcept": nil, "medicationReference": ref("Medication", "m2")}
		return [][2]map[string]any{{m, o}, {m2, o2}}
	case "MedicationAdministration":
		m := map[string]any{"meta": meta, "identifier": ident("match"), "status": "completed", "subject": subject("a"),
			"effectivePeriod":           map[string]any{"start": "2024-01-15T10:00:00Z", "end": "2024-01-15T11:00:00Z"},
			"medicationCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": rxnorm, "code": "6387"}}, "text": "lidocaine IV infusion"},
			"context":                   ref("Encounter", "e1"), "device": refs("Device", "d1"), "performer": []any{map[string]any{"actor": ref("Practitioner", "p1")}},
			"reasonCode": []any{coding(sct, "22253000")}}
		o := map[string]any{"identifier": ident("other"), "status": "in-progress", "subject": subject("b"),
			"effectivePeriod":           map[string]any{"start": "2019-06-01T08:00:00Z", "end": "2019-06-01T09:00:00Z"},
			"medicationCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": rxnorm, "code": "6130"}}, "text": "ketamine IV infusion"},
			"context":                   ref("Encounter", "e2"), "performer": []any{map[string]any{"actor": ref("Practitioner", "p2")}}, "reasonCode": []any{coding(sct, "279039007")}}
		if target != "" {
			m["request"] = map[string]any{"reference": target}
		}
		m2 := map[string]any{"identifier": ident("match-not-given"), "status": "not-done", "statusReason": []any{coding(sct, "182895007")},
			"medicationCodeableConcept": nil, "medicationReference": ref("Medication", "m1")}
		o2 := map[string]any{"identifier": ident("other-not-given"), "status": "not-done", "statusReason": []any{coding(sct, "266721009")},
			"medicationCodeableConcept": nil, "medicationReference": ref("Medication", "m2")}
		return [][2]map[string]any{{m, o}, {m2, o2}}
	}
	return [][2]map[string]any{{{"identifier": ident("match")}, {"identifier": ident("other")}}}
}

// searchBundle is what the kit reads of a searchset.
type searchBundle struct {
	Type  string `json:"type"`
	Total *int   `json:"total"`
	Link  []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		Resource map[string]any `json:"resource"`
		Search   struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

// has reports whether the bundle holds Type/id (in any search mode).
func (b searchBundle) has(typ, id string) bool { return b.index(typ, id) >= 0 }

func (b searchBundle) index(typ, id string) int {
	for i, e := range b.Entry {
		if e.Resource["resourceType"] == typ && e.Resource["id"] == id {
			return i
		}
	}
	return -1
}

func (b searchBundle) link(rel string) string {
	for _, l := range b.Link {
		if l.Relation == rel {
			return l.URL
		}
	}
	return ""
}

// matches counts the entries of mode match (or without a mode).
func (b searchBundle) matches() int {
	n := 0
	for _, e := range b.Entry {
		if e.Search.Mode == "" || e.Search.Mode == "match" {
			n++
		}
	}
	return n
}

// search sends a search and reads the searchset; problem is "" when the
// answer is a searchset.
func (c *checkRun) search(ctx context.Context, method, path string, form url.Values) (searchBundle, response, string) {
	var resp response
	if method == http.MethodPost {
		resp = c.do(ctx, method, path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, []byte(form.Encode()))
	} else {
		resp = c.do(ctx, method, path, nil, nil)
	}
	var b searchBundle
	switch {
	case resp.err != nil:
		return b, resp, resp.err.Error()
	case resp.status != http.StatusOK:
		return b, resp, fmt.Sprintf("%s %s answered %d", method, path, resp.status)
	case resp.res == nil || resp.res.Type != "Bundle" || json.Unmarshal(resp.body, &b) != nil:
		return b, resp, fmt.Sprintf("%s %s did not return a Bundle", method, path)
	case b.Type != "searchset":
		return b, resp, fmt.Sprintf("%s %s returned a Bundle of type %q, not searchset", method, path, b.Type)
	}
	return b, resp, ""
}

// searchRun runs the search suite on one resource type.
type searchRun struct {
	r     *runner
	cr    capResource
	pairs []searchPair
}

func (s *searchRun) begin(id, title, level, anchor string) *checkRun {
	return s.r.begin(id, title, SuiteSearch, s.cr.Type, level, specSearch+anchor)
}

// query is a search of the type restricted to the run's tag.
func (s *searchRun) query(extra ...string) string {
	q := "_tag=" + url.QueryEscape(TagSystem+"|"+s.r.report.RunID)
	for i := 0; i+1 < len(extra); i += 2 {
		q += "&" + extra[i] + "=" + url.QueryEscape(extra[i+1])
	}
	return s.cr.Type + "?" + q
}

// searchSuite runs the search checks on each declared resource type.
func (r *runner) searchSuite(ctx context.Context) {
	types := r.caps.resources()
	// MedicationRequest first, then MedicationAdministration: the others'
	// data reference them.
	rank := func(t string) int {
		return 2 - 2*boolInt(t == "MedicationRequest") - boolInt(t == "MedicationAdministration")
	}
	slices.SortStableFunc(types, func(a, b capResource) int { return rank(a.Type) - rank(b.Type) })
	var runs []*searchRun
	targets := map[string]string{}
	for _, cr := range types {
		s := &searchRun{r: r, cr: cr}
		setup := s.begin("search.setup", "the kit creates data built to match its searches and data built not to", Shall, "#search")
		switch _, ok := r.sample(cr.Type, "", nil); {
		case !ok:
			setup.skip("the kit has no sample %s to test with", cr.Type)
			continue
		case !cr.supports("search-type"):
			setup.skip("the CapabilityStatement does not declare search-type for %s", cr.Type)
			continue
		case !cr.supports("create"):
			setup.skip("the CapabilityStatement does not declare create for %s, and the kit searches only resources it creates", cr.Type)
			continue
		}
		setup.check.Spec = specHTTP + "#create"
		ok := true
		for _, f := range r.searchFixtures(cr.Type, targets) {
			var p searchPair
			for i, mods := range f {
				if len(s.pairs) > 0 {
					mods = withSelf(mods, cr.Type+"/"+s.pairs[0].matchID).(map[string]any)
				}
				body, res, _ := r.build(cr.Type, mods)
				resp := setup.do(ctx, http.MethodPost, cr.Type, nil, body)
				id := createdIDOf(r, cr.Type, resp)
				r.track(cr.Type, id)
				if id == "" {
					setup.fail("CapabilityStatement says %s supports create; the server answered %d with no id", cr.Type, resp.status)
					ok = false
					break
				}
				res["id"] = id
				keepLastUpdated(res, resp.body)
				if i == 0 {
					p.match, p.matchID = res, id
				} else {
					p.other, p.otherID = res, id
				}
			}
			if !ok {
				break
			}
			s.pairs = append(s.pairs, p)
		}
		if !ok {
			continue
		}
		setup.pass()
		targets[cr.Type] = cr.Type + "/" + s.pairs[0].matchID
		runs = append(runs, s)
	}
	for _, s := range runs {
		s.run(ctx, runs)
	}
}

// selfRef, in a fixture, stands for the first matching resource of the
// fixture's own type.
const selfRef = "kit:first-match"

// withSelf copies v with the references selfRef replaced by ref.
func withSelf(v any, ref string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = withSelf(e, ref)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withSelf(e, ref)
		}
		return out
	case string:
		if x == selfRef {
			return ref
		}
	}
	return v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// createdIDOf finds the id of a created resource in the body or the
// Location header (without following it).
func createdIDOf(r *runner, typ string, resp response) string {
	if resp.err != nil || (resp.status != http.StatusCreated && resp.status != http.StatusOK) {
		return ""
	}
	if resp.res != nil && resp.res.Type == typ && resp.res.ID != "" {
		return resp.res.ID
	}
	if t, id := locationID(r, resp.header.Get("Location")); t == typ {
		return id
	}
	return ""
}

// locationID reads Type and id out of a location (absolute or relative
// to the base); it is never followed.
func locationID(r *runner, loc string) (typ, id string) {
	if loc == "" {
		return "", ""
	}
	p := loc
	if u, err := url.Parse(loc); err == nil && u.IsAbs() {
		rest, ok := strings.CutPrefix(u.Path, strings.TrimRight(r.base.Path, "/")+"/")
		if !ok {
			return "", ""
		}
		p = rest
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) < 2 {
		return "", ""
	}
	return parts[0], parts[1]
}

// claim names what the CapabilityStatement says about a search parameter.
func (s *searchRun) claim(name string) string {
	return fmt.Sprintf("CapabilityStatement says %s supports the search parameter %s", s.cr.Type, name)
}

// expect ends c: the search (request, e.g. "GET T?…") must find want and
// not unwanted.
func (s *searchRun) expect(c *checkRun, b searchBundle, problem, claim, request, want, unwanted string) {
	switch {
	case problem != "":
		c.fail("%s; the server answered: %s", claim, problem)
	case !b.has(s.cr.Type, want):
		c.fail("%s; the server answered %s without %s/%s, built to match", claim, request, s.cr.Type, want)
	case unwanted != "" && b.has(s.cr.Type, unwanted):
		c.fail("%s; the server answered %s with %s/%s, built not to match", claim, request, s.cr.Type, unwanted)
	default:
		c.pass()
	}
}

// pairsMatch returns the matching resource of the pair for a parameter.
func (s *searchRun) pairsMatch(name string) map[string]any {
	p, _, _ := s.pairFor(name)
	return p.match
}

// pairFor returns the first pair whose matching resource gives the
// parameter a value the other resource does not have; without one, why
// says why.
func (s *searchRun) pairFor(name string) (p searchPair, v, why string) {
	d, _ := s.r.paramDef(s.cr.Type, name)
	for _, p := range s.pairs {
		mv, reason := s.r.paramValues(s.cr.Type, name, p.match)
		if len(mv) == 0 {
			if why == "" || strings.HasPrefix(why, "the kit's data built to match gives") {
				why = reason
			}
			continue
		}
		ov, _ := s.r.paramValues(s.cr.Type, name, p.other)
		if v, ok := distinct(d.typ, mv, ov); ok {
			return p, v, ""
		}
		why = fmt.Sprintf("the kit's data built not to match has every value of %s the data built to match has", name)
	}
	return searchPair{}, "", why
}

// keepLastUpdated copies meta.lastUpdated of a created resource (the
// body the server answered) into res, for _lastUpdated.
func keepLastUpdated(res map[string]any, body []byte) {
	var got struct {
		Meta struct {
			LastUpdated string `json:"lastUpdated"`
		} `json:"meta"`
	}
	if json.Unmarshal(body, &got) != nil || got.Meta.LastUpdated == "" {
		return
	}
	if meta, ok := res["meta"].(map[string]any); ok {
		meta["lastUpdated"] = got.Meta.LastUpdated
	}
}

// dateValue makes the search value of a date parameter from the matching
// and the other resource's dates: the day when they differ by day, else
// le or ge the whole instant; "" when they are the same.
func dateValue(match string, other []string) string {
	day := match[:min(len(match), 10)]
	if !slices.ContainsFunc(other, func(o string) bool { return strings.HasPrefix(o, day) }) {
		return day
	}
	before, after := true, true
	for _, o := range other {
		before = before && match < o
		after = after && match > o
	}
	switch {
	case before:
		return "le" + match
	case after:
		return "ge" + match
	}
	return ""
}

func (s *searchRun) run(ctx context.Context, all []*searchRun) {
	typ := s.cr.Type
	var dateParam, stringParam string
	for _, sp := range s.cr.SearchParam {
		c := s.begin("search.param."+sp.Name, "a search by the declared parameter "+sp.Name+" finds the resource built to match and not the other", Shall, "#"+sp.Type)
		if !slices.Contains(searchTypes, sp.Type) {
			c.check.Spec = specSearch + "#ptypes"
			c.skip("the kit does not test search parameters of type %s", sp.Type)
			continue
		}
		p, v, why := s.pairFor(sp.Name)
		if why != "" {
			c.skip("%s", why)
			continue
		}
		if sp.Type == "date" {
			ov, _ := s.r.paramValues(typ, sp.Name, p.other)
			if v = dateValue(v, ov); v == "" {
				c.skip("the data built to match and the data built not to have the same %s", sp.Name)
				continue
			}
			if dateParam == "" && !strings.HasPrefix(sp.Name, "_") && len(v) == 10 {
				dateParam = sp.Name
			}
		}
		if sp.Type == "string" && stringParam == "" {
			stringParam = sp.Name
		}
		path := s.query(sp.Name, v)
		b, _, problem := c.search(ctx, http.MethodGet, path, nil)
		s.expect(c, b, problem, s.claim(sp.Name), "GET "+path, p.matchID, p.otherID)
	}

	// date prefixes and precision
	dateChecks := []struct{ id, title string }{
		{"search.date.ge", "a date search with the prefix ge finds what is on or after the date"},
		{"search.date.le", "a date search with the prefix le finds what is on or before the date"},
		{"search.date.year", "a date search at the precision of a year finds what falls in that year"},
	}
	if dateParam == "" {
		for _, d := range dateChecks {
			s.begin(d.id, d.title, Shall, "#date").skip("the CapabilityStatement declares no date parameter for %s the kit has a sample value for", typ)
		}
	} else {
		p, v, _ := s.pairFor(dateParam)
		ov, _ := s.r.paramValue(typ, dateParam, p.other)
		year, oyear := v[:min(4, len(v))], ov[:min(4, len(ov))]
		for i, d := range dateChecks {
			c := s.begin(d.id, d.title, Shall, "#date")
			val, want, unwanted := "ge"+year+"-01-01", p.matchID, p.otherID
			switch i {
			case 1:
				val, want, unwanted = "le"+oyear+"-12-31", p.otherID, p.matchID
			case 2:
				val = year
			}
			if year <= oyear {
				c.skip("the kit's sample dates do not differ by year")
				continue
			}
			path := s.query(dateParam, val)
			b, _, problem := c.search(ctx, http.MethodGet, path, nil)
			s.expect(c, b, problem, s.claim(dateParam), "GET "+path, want, unwanted)
		}
	}

	// string modifiers
	stringChecks := []struct{ id, title, level string }{
		{"search.string.default", "a string search matches, ignoring case, the start of the value", Shall},
		{"search.string.exact", "a string search with :exact matches the whole value, case and all", Should},
		{"search.string.contains", "a string search with :contains matches anywhere in the value", Should},
	}
	if v, _ := s.r.paramValue(typ, stringParam, s.pairsMatch(stringParam)); len(strings.Fields(v)) == 0 || len(v) < 2 {
		stringParam = ""
	}
	if stringParam == "" {
		for _, d := range stringChecks {
			c := s.begin(d.id, d.title, d.level, "#string")
			declared := false
			for _, sp := range s.cr.SearchParam {
				declared = declared || sp.Type == "string"
			}
			if declared {
				c.skip("the kit's data gives none of the string parameters declared for %s a value of two or more characters", typ)
			} else {
				c.skip("the CapabilityStatement declares no string parameter for %s", typ)
			}
		}
	} else {
		p, v, _ := s.pairFor(stringParam)
		words := strings.Fields(v)
		for i, d := range stringChecks {
			c := s.begin(d.id, d.title, d.level, "#string")
			var path string
			want, unwanted := p.matchID, p.otherID
			switch i {
			case 0:
				path = s.query(stringParam, strings.ToLower(words[0]))
			case 1:
				// the whole value finds it; only its start does not
				path = s.query(stringParam+":exact", v)
				b, _, problem := c.search(ctx, http.MethodGet, path, nil)
				if problem == "" && b.has(typ, p.matchID) {
					prefix := s.query(stringParam+":exact", words[0])
					b2, _, problem2 := c.search(ctx, http.MethodGet, prefix, nil)
					if problem2 == "" && b2.has(typ, p.matchID) {
						c.fail("GET %s found %s/%s, whose value is %q", prefix, typ, p.matchID, v)
						continue
					}
				}
				s.expect(c, b, problem, s.claim(stringParam+":exact"), "GET "+path, want, unwanted)
				continue
			case 2:
				mid := v[1:min(len(v), 1+len(words[0])+4)]
				path = s.query(stringParam+":contains", mid)
			}
			b, _, problem := c.search(ctx, http.MethodGet, path, nil)
			s.expect(c, b, problem, s.claim(stringParam), "GET "+path, want, unwanted)
		}
	}

	p := s.pairs[0]
	// _count and paging
	c := s.begin("search.count", "_count=1 returns no more than one match", Shall, "#count")
	path := s.query("_count", "1")
	b, resp, problem := c.search(ctx, http.MethodGet, path, nil)
	switch {
	case problem != "":
		c.fail("%s", problem)
	case b.matches() > 1:
		c.fail("GET %s returned %d matches", path, b.matches())
	default:
		c.pass()
	}
	c = s.begin("search.paging.next", "a page of a longer result has a next link on the server's base, and it can be followed", Should, "#paging")
	c.saw(resp)
	next := b.link("next")
	if problem != "" {
		c.fail("%s", problem)
	} else if next == "" {
		c.fail("GET %s returned no next link, though the run has at least 2 %s resources", path, typ)
	} else if u, err := s.r.base.Parse(next); err != nil || u.Host != s.r.base.Host || !strings.HasPrefix(u.Path, strings.TrimRight(s.r.base.Path, "/")+"/") {
		c.fail("the next link %q is not on the base %s (the kit does not follow it)", next, s.r.base)
	} else {
		rel := strings.TrimPrefix(u.Path, strings.TrimRight(s.r.base.Path, "/")+"/")
		if u.RawQuery != "" {
			rel += "?" + u.RawQuery
		}
		b2, _, problem2 := c.search(ctx, http.MethodGet, rel, nil)
		switch {
		case problem2 != "":
			c.fail("following the next link: %s", problem2)
		case b2.matches() == 0:
			c.fail("the next page %s is empty", next)
		case len(b.Entry) > 0 && b2.has(typ, fmt.Sprint(b.Entry[0].Resource["id"])):
			c.fail("the next page %s repeats the first page's entry", next)
		default:
			c.pass()
		}
	}

	// _sort
	c = s.begin("search.sort", "_sort on a date parameter orders the matches, - for descending", Should, "#sort")
	if dateParam == "" {
		c.skip("the CapabilityStatement declares no date parameter for %s the kit has a sample value for", typ)
	} else {
		dp, _, _ := s.pairFor(dateParam)
		ok := true
		for _, order := range []string{dateParam, "-" + dateParam} {
			path := s.query("_count", "100", "_sort", order)
			b, _, problem := c.search(ctx, http.MethodGet, path, nil)
			i, j := b.index(typ, dp.otherID), b.index(typ, dp.matchID)
			if strings.HasPrefix(order, "-") {
				i, j = j, i
			}
			if problem != "" {
				c.fail("%s", problem)
				ok = false
				break
			}
			if i < 0 || j < 0 || i > j {
				c.fail("GET %s did not put %s/%s (%s) and %s/%s (%s) in that order", path, typ, dp.otherID, "older", typ, dp.matchID, "newer")
				ok = false
				break
			}
		}
		if ok {
			c.pass()
		}
	}

	// _include and _revinclude
	inc, tgtType, tgtID := s.includable(all)
	s.includeCheck(ctx, p, "search.include", "_include", "_include declared in searchInclude returns the referenced resource",
		"#include", s.cr.SearchInclude, inc, tgtType, tgtID)
	rev, srcType, srcID, srcParam := s.revincludable(all)
	s.includeCheck(ctx, p, "search.revinclude", "_revinclude", "_revinclude declared in searchRevInclude returns the resources that reference the match",
		"#revinclude", s.cr.SearchRevInclude, rev, srcType, srcID)
	c = s.begin("search.has", "_has selects the resources referenced by resources that match", Shall, "#has")
	switch {
	case !s.r.declaresParam(typ, "_has"):
		c.skip("the CapabilityStatement does not declare _has for %s", typ)
	case rev == "":
		c.skip("the kit's data has no resource referencing a %s through a declared parameter", typ)
	default:
		path := s.query("_has:"+srcType+":"+srcParam+":_id", srcID)
		b, _, problem := c.search(ctx, http.MethodGet, path, nil)
		s.expect(c, b, problem, s.claim("_has"), "GET "+path, p.matchID, p.otherID)
	}
	s.chainChecks(ctx, all)

	// _summary=count
	c = s.begin("search.summary-count", "_summary=count returns the total and no entries", Should, "#summary")
	path = s.query("_summary", "count")
	b, _, problem = c.search(ctx, http.MethodGet, path, nil)
	switch {
	case problem != "":
		c.fail("%s", problem)
	case b.Total == nil:
		c.fail("GET %s returned no total", path)
	case *b.Total < 2:
		c.fail("GET %s returned the total %d; the run has at least 2 %s resources", path, *b.Total, typ)
	case len(b.Entry) > 0:
		c.fail("GET %s returned %d entries", path, len(b.Entry))
	default:
		c.pass()
	}

	// _elements=id
	c = s.begin("search.elements", "_elements=id returns the matches without the optional elements not asked for", Should, "#elements")
	path = s.query("_id", p.matchID, "_elements", "id")
	b, _, problem = c.search(ctx, http.MethodGet, path, nil)
	switch i := b.index(typ, p.matchID); {
	case problem != "":
		c.fail("%s", problem)
	case i < 0:
		c.fail("GET %s did not return %s/%s", path, typ, p.matchID)
	case b.Entry[i].Resource["identifier"] != nil:
		// identifier is optional in every type the kit has data for, and
		// the kit's data has one: the server SHOULD leave it out (it may
		// add mandatory elements).
		c.fail("GET %s returned the element identifier, which was not asked for", path)
	default:
		c.pass()
	}

	// _total=accurate
	c = s.begin("search.total-accurate", "_total=accurate returns the exact number of matches", Should, "#total")
	path = s.query("_id", p.matchID+","+p.otherID, "_total", "accurate")
	b, _, problem = c.search(ctx, http.MethodGet, path, nil)
	switch {
	case problem != "":
		c.fail("%s", problem)
	case b.Total == nil:
		c.fail("GET %s returned no total", path)
	case *b.Total != 2:
		c.fail("GET %s returned the total %d, not 2", path, *b.Total)
	default:
		c.pass()
	}

	// POST _search
	c = s.begin("search.post", "POST [type]/_search with a form body searches as GET does", Shall, "#search")
	c.check.Spec = specHTTP + "#search"
	form := url.Values{"_tag": {TagSystem + "|" + s.r.report.RunID}, "_id": {p.matchID}}
	b, _, problem = c.search(ctx, http.MethodPost, typ+"/_search", form)
	s.expect(c, b, problem, fmt.Sprintf("CapabilityStatement says %s supports search-type", typ), "POST "+typ+"/_search", p.matchID, p.otherID)
}

// declaresParam reports whether the CapabilityStatement declares a search
// parameter for typ (or for all types).
func (r *runner) declaresParam(typ, name string) bool {
	for _, cr := range r.caps.resources() {
		for _, p := range cr.SearchParam {
			if cr.Type == typ && p.Name == name {
				return true
			}
		}
	}
	for _, rest := range r.caps.Rest {
		for _, p := range rest.SearchParam {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// includable finds a declared searchInclude of the type whose reference,
// in the matching resource, names a resource of the run.
func (s *searchRun) includable(all []*searchRun) (inc, typ, id string) {
	for _, decl := range s.cr.SearchInclude {
		t, param, ok := strings.Cut(decl, ":")
		if !ok || t != s.cr.Type || param == "*" {
			continue
		}
		v, ok := s.r.paramValue(s.cr.Type, param, s.pairs[0].match)
		if !ok {
			continue
		}
		rt, rid, _ := strings.Cut(v, "/")
		for _, o := range all {
			if o.cr.Type == rt && o.pairs[0].matchID == rid {
				return decl, rt, rid
			}
		}
	}
	return "", "", ""
}

// revincludable finds a declared searchRevInclude Src:param where a
// resource of the run of type Src references the type's match.
func (s *searchRun) revincludable(all []*searchRun) (rev, srcType, srcID, param string) {
	want := s.cr.Type + "/" + s.pairs[0].matchID
	for _, decl := range s.cr.SearchRevInclude {
		t, p, ok := strings.Cut(decl, ":")
		if !ok {
			continue
		}
		for _, o := range all {
			if o.cr.Type != t {
				continue
			}
			for _, op := range o.pairs {
				if v, _ := o.r.paramValues(t, p, op.match); slices.Contains(v, want) {
					return decl, t, op.matchID, p
				}
			}
		}
	}
	return "", "", "", ""
}

// includeCheck checks _include or _revinclude (param) of the pair p's
// match: value, found among the declared ones, must bring wantType/wantID.
func (s *searchRun) includeCheck(ctx context.Context, p searchPair, id, param, title, anchor string, declared []string, value, wantType, wantID string) {
	typ := s.cr.Type
	element := map[string]string{"_include": "searchInclude", "_revinclude": "searchRevInclude"}[param]
	c := s.begin(id, title, Shall, anchor)
	switch {
	case value == "" && len(declared) == 0:
		c.skip("the CapabilityStatement declares no %s for %s", element, typ)
		return
	case value == "":
		c.skip("no declared %s of %s (%s) leads from or to a resource the kit created: the kit creates only %s", element, typ, strings.Join(declared, ", "), strings.Join(s.r.createdTypes(), ", "))
		return
	}
	path := s.query("_id", p.matchID, param, value)
	b, _, problem := c.search(ctx, http.MethodGet, path, nil)
	switch {
	case problem != "":
		c.fail("CapabilityStatement says %s supports %s=%s; the server answered: %s", typ, param, value, problem)
	case b.index(wantType, wantID) < 0:
		c.fail("CapabilityStatement says %s supports %s=%s; the server answered GET %s without %s/%s", typ, param, value, path, wantType, wantID)
	default:
		c.pass()
	}
}

// createdTypes lists the types the search suite created data of.
func (r *runner) createdTypes() []string {
	var out []string
	for _, cr := range r.caps.resources() {
		if _, ok := r.sample(cr.Type, "", nil); ok && cr.supports("create") && cr.supports("search-type") {
			out = append(out, cr.Type)
		}
	}
	return out
}
