package search

import (
	"encoding/json"
	"math"
	"slices"
	"strings"

	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"infusion/fhir"
)

// Entries are the index rows of one resource: what each of its search
// parameters finds in it. Group ties the parts of a composite together: 0 for
// the resource's own elements, i+1 for Observation.component[i].
type Entries struct {
	Tokens     []Token
	Strings    []String
	References []Reference
	Dates      []Date
	Quantities []Quantity
	URIs       []URI
}

// Token is a code, a coding, an identifier or a plain string.
type Token struct {
	Param, System, Code string
	Text                string // display or text, normalized, for :text
	TypeSystem          string // an identifier's type, for :of-type
	TypeCode            string
	Group               int
}

// String is a string value, normalized (lower case, no accents) and exact.
type String struct {
	Param, Norm, Exact string
	Group              int
}

// Reference is a literal or logical reference.
type Reference struct {
	Param, TargetType, TargetID, URL string
	IdentSystem, IdentValue          string
	Group                            int
}

// Date is the range of instants a date, dateTime, instant, Period or
// Timing event covers, in Unix milliseconds, both ends included.
type Date struct {
	Param     string
	Low, High int64
	Group     int
}

// Quantity is a quantity with its unit.
type Quantity struct {
	Param              string
	Value              float64
	System, Code, Unit string
	Group              int
}

// URI is a uri, url or canonical.
type URI struct {
	Param, Value string
	Group        int
}

// Unbounded ends of date ranges (a Period without start or end).
const (
	MinTime int64 = math.MinInt64
	MaxTime int64 = math.MaxInt64
)

// Extract returns the index rows of a resource (its decoded JSON) for every
// parameter of its type. _id and _lastUpdated are not indexed: the server
// sets them, and the store searches its own columns for them.
func (r *Registry) Extract(typeName string, tree map[string]any) Entries {
	var e Entries
	for _, p := range r.byType[typeName] {
		if p.Name == "_id" || p.Name == "_lastUpdated" {
			continue
		}
		for _, pt := range p.paths {
			pt.walk(tree, 0, 0, func(v any, group int) { r.add(&e, p, pt, v, group) })
		}
		if p.Name == "medication" {
			e.Tokens = append(e.Tokens, medicationCodes(p.Key, tree)...)
		}
	}
	return e
}

// medicationCodes indexes, beside the medication reference, the codes of
// the medication itself — medicationCodeableConcept, or the code of a
// contained Medication — so that medication=system|code finds an order
// however it names its drug (an extension of the R4 reference parameter).
func medicationCodes(key string, tree map[string]any) []Token {
	cc, ok := tree["medicationCodeableConcept"].(map[string]any)
	if !ok {
		ref, _ := tree["medicationReference"].(map[string]any)
		s, _ := ref["reference"].(string)
		id, local := strings.CutPrefix(s, "#")
		if !local {
			return nil
		}
		for _, c := range asArray(tree["contained"]) {
			med, _ := c.(map[string]any)
			if med["resourceType"] == "Medication" && med["id"] == id {
				cc, _ = med["code"].(map[string]any)
			}
		}
	}
	var out []Token
	for _, c := range asArray(cc["coding"]) {
		if t, ok := coding(key, c, 0); ok {
			out = append(out, t)
		}
	}
	return out
}

// walk calls fn with each value at the path's end, and its composite group.
func (p *path) walk(v any, i, group int, fn func(any, int)) {
	if i == len(p.steps) {
		fn(v, group)
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	s := p.steps[i]
	switch child := obj[s.name].(type) {
	case nil:
	case []any:
		for j, item := range child {
			g := group
			if s.group {
				g = j + 1
			}
			p.walk(item, i+1, g, fn)
		}
	default:
		p.walk(child, i+1, group, fn)
	}
}

// add turns one value into index rows by the parameter's type and the
// element's type.
func (r *Registry) add(e *Entries, p *Param, pt *path, v any, group int) {
	switch p.Type {
	case TypeToken:
		e.Tokens = append(e.Tokens, r.tokens(p.Key, pt, v, group)...)
	case TypeString:
		if s, ok := v.(string); ok {
			e.Strings = append(e.Strings, String{Param: p.Key, Norm: Normalize(s), Exact: s, Group: group})
		}
	case TypeReference:
		if ref, ok := r.reference(p.Key, v, group); ok && (len(pt.targets) == 0 || slices.Contains(pt.targets, ref.TargetType)) {
			e.References = append(e.References, ref)
		}
	case TypeDate:
		e.Dates = append(e.Dates, dates(p.Key, pt.elemType, v, group)...)
	case TypeQuantity:
		if q, ok := quantity(p.Key, v, group); ok {
			e.Quantities = append(e.Quantities, q)
		}
	case TypeURI:
		if s, ok := v.(string); ok {
			e.URIs = append(e.URIs, URI{Param: p.Key, Value: s, Group: group})
		}
	}
}

func (r *Registry) tokens(key string, pt *path, v any, group int) []Token {
	switch x := v.(type) {
	case string:
		return []Token{{Param: key, System: r.codeSystem(pt.binding, x), Code: x, Group: group}}
	case bool:
		code := "false"
		if x {
			code = "true"
		}
		return []Token{{Param: key, Code: code, Group: group}}
	case map[string]any:
		switch pt.elemType {
		case "CodeableConcept":
			// One row per coding; the concept's text, when it has one, goes
			// on the first row (and then no display does): one text entry
			// per concept keeps the :text index small.
			text, hasText := x["text"].(string)
			var out []Token
			for _, c := range asArray(x["coding"]) {
				if t, ok := coding(key, c, group); ok {
					if hasText {
						t.Text = ""
					}
					out = append(out, t)
				}
			}
			switch {
			case hasText && len(out) > 0:
				out[0].Text = Normalize(text)
			case hasText:
				out = append(out, Token{Param: key, Text: Normalize(text), Group: group})
			}
			return out
		case "Coding":
			if t, ok := coding(key, x, group); ok {
				return []Token{t}
			}
		case "Identifier":
			value, _ := x["value"].(string)
			system, _ := x["system"].(string)
			t := Token{Param: key, System: system, Code: value, Group: group}
			if typ, ok := x["type"].(map[string]any); ok {
				t.Text, _ = typ["text"].(string)
				t.Text = Normalize(t.Text)
				if codings := asArray(typ["coding"]); len(codings) > 0 {
					c, _ := codings[0].(map[string]any)
					t.TypeSystem, _ = c["system"].(string)
					t.TypeCode, _ = c["code"].(string)
				}
			}
			return []Token{t}
		case "ContactPoint":
			value, _ := x["value"].(string)
			system, _ := x["system"].(string)
			return []Token{{Param: key, System: system, Code: value, Group: group}}
		}
	}
	return nil
}

// codeSystem returns the code system of a code of a required binding, when
// the value set draws it from exactly one system.
func (r *Registry) codeSystem(binding, code string) string {
	if binding == "" {
		return ""
	}
	found := ""
	for system, codes := range r.model.ValueSets[binding] {
		for _, c := range codes {
			if c == code {
				if found != "" {
					return ""
				}
				found = system
			}
		}
	}
	return found
}

func coding(key string, v any, group int) (Token, bool) {
	c, ok := v.(map[string]any)
	if !ok {
		return Token{}, false
	}
	system, _ := c["system"].(string)
	code, _ := c["code"].(string)
	display, _ := c["display"].(string)
	if code == "" && display == "" {
		return Token{}, false
	}
	return Token{Param: key, System: system, Code: code, Text: Normalize(display), Group: group}, true
}

// reference indexes a Reference: a relative one, or an absolute one to this
// server, by its type and id; an absolute one elsewhere only by its URL.
func (r *Registry) reference(key string, v any, group int) (Reference, bool) {
	obj, ok := v.(map[string]any)
	if !ok {
		if s, ok := v.(string); ok { // a canonical
			return Reference{Param: key, URL: s, Group: group}, true
		}
		return Reference{}, false
	}
	out := Reference{Param: key, Group: group}
	if ident, ok := obj["identifier"].(map[string]any); ok {
		out.IdentSystem, _ = ident["system"].(string)
		out.IdentValue, _ = ident["value"].(string)
	}
	out.TargetType, _ = obj["type"].(string)
	if s, ok := obj["reference"].(string); ok {
		ref := fhir.ParseReference(s)
		switch ref.Kind {
		case fhir.RefLiteral:
			if ref.Base != "" {
				out.URL = s
			}
			if ref.Base == "" || r.base != "" && ref.Base == r.base {
				out.TargetType, out.TargetID = ref.Type, ref.ID
			}
		case fhir.RefAbsolute:
			out.URL = s
		default:
			if out.IdentValue == "" {
				return Reference{}, false // contained or unresolved: not searchable
			}
		}
	}
	if out.TargetID == "" && out.URL == "" && out.IdentValue == "" {
		return Reference{}, false
	}
	return out, true
}

func dates(key, elemType string, v any, group int) []Date {
	switch x := v.(type) {
	case string:
		if d, ok := dateRange(x); ok {
			return []Date{{Param: key, Low: d[0], High: d[1], Group: group}}
		}
	case map[string]any:
		switch elemType {
		case "Period":
			low, high := MinTime, MaxTime
			if s, ok := x["start"].(string); ok {
				if d, ok := dateRange(s); ok {
					low = d[0]
				}
			}
			if s, ok := x["end"].(string); ok {
				if d, ok := dateRange(s); ok {
					high = d[1]
				}
			}
			if low == MinTime && high == MaxTime {
				return nil
			}
			return []Date{{Param: key, Low: low, High: high, Group: group}}
		case "Timing":
			var out []Date
			for _, ev := range asArray(x["event"]) {
				out = append(out, dates(key, "dateTime", ev, group)...)
			}
			if rep, ok := x["repeat"].(map[string]any); ok {
				out = append(out, dates(key, "Period", rep["boundsPeriod"], group)...)
			}
			return out
		}
	}
	return nil
}

// dateRange returns the first and last millisecond a FHIR date, dateTime or
// instant covers.
func dateRange(s string) ([2]int64, bool) {
	dt, err := fhir.ParseDateTime(s)
	if err != nil {
		return [2]int64{}, false
	}
	return [2]int64{dt.Time.UnixMilli(), dt.End().UnixMilli() - 1}, true
}

func quantity(key string, v any, group int) (Quantity, bool) {
	obj, ok := v.(map[string]any)
	if !ok {
		return Quantity{}, false
	}
	n, ok := obj["value"].(json.Number)
	if !ok {
		return Quantity{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return Quantity{}, false
	}
	q := Quantity{Param: key, Value: f, Group: group}
	q.System, _ = obj["system"].(string)
	q.Code, _ = obj["code"].(string)
	q.Unit, _ = obj["unit"].(string)
	return q, true
}

// Normalize folds a string for matching: lower case, accents removed,
// spaces collapsed.
func Normalize(s string) string {
	if isASCII(s) { // nothing to decompose or strip
		return strings.Join(strings.Fields(strings.ToLower(s)), " ")
	}
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.Join(strings.Fields(strings.ToLower(out)), " ")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func asArray(v any) []any {
	a, _ := v.([]any)
	return a
}
