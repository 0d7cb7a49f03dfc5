package search

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"infusion/fhir"
)

// Query is a parsed search request: the clauses (all must hold) and the
// result parameters.
type Query struct {
	Types      []string // the types searched: one, or several for a system search
	Clauses    []Clause
	Include    []Include
	RevInclude []Include
	Sort       []Sort
	Count      int
	Total      string // none, estimate or accurate; "" (not asked) counts on the first page only
	Summary    string // "", true, text, data, count or false
	Elements   []string
	Page       string // the opaque paging cursor of a next or previous link
	// Used are the parameters the search used, for the self link; parameters
	// ignored under lenient handling are left out.
	Used url.Values
}

// Clause is one search parameter occurrence: any of its Values may match.
type Clause struct {
	Param    *Param
	Modifier string // not, text, missing, exact, contains, identifier, of-type, below, above, or a type name
	Values   []Value
	Chain    *Chain // param.other=…: Values apply to Chain.Clause on the referenced resources
	Has      *Has   // _has:Type:ref:param=…
}

// Chain is the target of a chained reference parameter.
type Chain struct {
	Types  []string // the stored types the reference may point at
	Clause Clause   // the condition on them (which may chain again)
}

// Has is a reverse chain: resources of Type whose Ref parameter points at
// the searched resource and that satisfy Clause.
type Has struct {
	Type   string
	Ref    *Param
	Clause Clause
}

// Value is one parsed search value; which field is set follows the
// parameter's type.
type Value struct {
	Prefix     string // eq ne gt lt ge le sa eb ap, for dates, numbers and quantities
	Token      TokenValue
	Date       DateValue
	Number     NumberValue
	Quantity   QuantityValue
	Reference  ReferenceValue
	Text       string  // a string or uri value, or the :text of a token (normalized for strings)
	Components []Value // a composite's values, one per component
	Missing    bool    // with :missing
}

// TokenValue is [system|]code; HasSystem says a | was given ("|code" means
// no system).
type TokenValue struct {
	System, Code         string
	HasSystem            bool
	TypeSystem, TypeCode string // :of-type
}

// DateValue is the range a search date covers, in Unix milliseconds.
type DateValue struct{ Low, High int64 }

// NumberValue is a number and the range its precision implies (5.4 means
// [5.35, 5.45)).
type NumberValue struct{ Value, Low, High float64 }

// QuantityValue is number|system|code, or number||unit.
type QuantityValue struct {
	NumberValue
	System, Code string
}

// ReferenceValue is Type/id, id, an absolute URL, or system|value with
// :identifier.
type ReferenceValue struct {
	Type, ID, URL           string
	IdentSystem, IdentValue string
}

// Include is _include or _revinclude: Type:param[:target], or Type:* for
// every reference parameter.
type Include struct {
	Type    string
	Params  []*Param
	Target  string
	Iterate bool
}

// Sort is one _sort key.
type Sort struct {
	Param      *Param // _id and _lastUpdated included
	Descending bool
}

// The limits of _count.
const (
	DefaultCount = 20
	MaxCount     = 1000
)

// Options are how a request is parsed.
type Options struct {
	Strict bool      // Prefer: handling=strict: unknown parameters are errors
	Now    time.Time // for the ap prefix
}

// Parse reads the parameters of a search on types (one type, or several for
// a system search, where only the common parameters apply). An unknown
// parameter is ignored (and left out of Used) unless opts.Strict; a value
// that cannot be parsed is an error naming the parameter.
func (r *Registry) Parse(types []string, params url.Values, opts Options) (*Query, error) {
	q := &Query{Types: types, Count: DefaultCount, Used: url.Values{}}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		for _, raw := range params[key] {
			used, err := r.parseParam(q, key, raw, opts)
			if err != nil {
				return nil, err
			}
			if used {
				q.Used.Add(key, raw)
			}
		}
	}
	return q, nil
}

// invalid is the error for a value that cannot be parsed.
func invalid(param, format string, args ...any) error {
	return fhir.Errorf(fhir.KindInvalid, fhir.IssueValue, "", "search parameter %s: "+format, append([]any{param}, args...)...)
}

func (r *Registry) parseParam(q *Query, key, raw string, opts Options) (bool, error) {
	switch key {
	case "_format", "_pretty", "_type":
		return false, nil // handled by the server
	case "_count":
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return false, invalid(key, "%q is not a whole number of 0 or more", raw)
		}
		q.Count = min(n, MaxCount)
		q.Used.Set(key, strconv.Itoa(q.Count))
		return false, nil
	case "_total":
		if raw != "none" && raw != "estimate" && raw != "accurate" {
			return false, invalid(key, "%q is not none, estimate or accurate", raw)
		}
		q.Total = raw
		return true, nil
	case "_summary":
		if !slices.Contains([]string{"true", "text", "data", "count", "false"}, raw) {
			return false, invalid(key, "%q is not true, text, data, count or false", raw)
		}
		q.Summary = raw
		return true, nil
	case "_elements":
		for _, e := range strings.Split(raw, ",") {
			if e = strings.TrimSpace(e); e != "" {
				q.Elements = append(q.Elements, e)
			}
		}
		return true, nil
	case "_page":
		q.Page = raw
		return false, nil
	case "_sort":
		return true, r.parseSort(q, raw)
	case "_include", "_include:iterate", "_revinclude", "_revinclude:iterate":
		inc, err := r.parseInclude(key, raw)
		if err != nil {
			return false, err
		}
		if strings.HasPrefix(key, "_include") {
			q.Include = append(q.Include, inc)
		} else {
			q.RevInclude = append(q.RevInclude, inc)
		}
		return true, nil
	}
	if strings.HasPrefix(key, "_has:") {
		c, err := r.parseHas(q.Types, key, raw, opts)
		if err != nil {
			return false, err
		}
		q.Clauses = append(q.Clauses, c)
		return true, nil
	}
	c, known, err := r.parseClause(q.Types, key, raw, opts)
	if err != nil {
		return false, err
	}
	if !known {
		if opts.Strict {
			return false, fhir.Errorf(fhir.KindInvalid, fhir.IssueNotSupported, "",
				"unknown search parameter %s for %s (Prefer: handling=strict)", key, strings.Join(q.Types, ", "))
		}
		return false, nil
	}
	q.Clauses = append(q.Clauses, c)
	return true, nil
}

// lookupAll returns the parameter of that name for a search on types: a
// parameter of the type, or across several types one common to every
// resource.
func (r *Registry) lookupAll(types []string, name string) (*Param, bool) {
	if len(types) == 0 {
		return nil, false
	}
	p, ok := r.Lookup(types[0], name)
	if !ok || len(types) > 1 && p.Base != "Resource" {
		return nil, false
	}
	return p, true
}

// parseClause parses name[:modifier][.chain]=values. known is false for an
// unknown parameter.
func (r *Registry) parseClause(types []string, key, raw string, opts Options) (Clause, bool, error) {
	head, chain, chained := strings.Cut(key, ".")
	name, modifier, _ := strings.Cut(head, ":")
	p, ok := r.lookupAll(types, name)
	if !ok {
		return Clause{}, false, nil
	}
	c := Clause{Param: p, Modifier: modifier}
	if chained {
		if p.Type != TypeReference {
			return Clause{}, true, invalid(name, "only reference parameters can be chained")
		}
		targets, err := r.chainTargets(p, modifier)
		if err != nil {
			return Clause{}, true, err
		}
		inner, known, err := r.parseClause(targets, chain, raw, opts)
		if err != nil {
			return Clause{}, true, err
		}
		if !known {
			return Clause{}, true, invalid(key, "%s is not a search parameter of %s", chain, strings.Join(targets, " or "))
		}
		c.Modifier = ""
		c.Chain = &Chain{Types: targets, Clause: inner}
		return c, true, nil
	}
	if err := checkModifier(p, modifier, r); err != nil {
		return Clause{}, true, err
	}
	if modifier == "missing" {
		if raw != "true" && raw != "false" {
			return Clause{}, true, invalid(key, "%q is not true or false", raw)
		}
		c.Values = []Value{{Missing: raw == "true"}}
		return c, true, nil
	}
	for _, part := range splitEscaped(raw, ',') {
		v, err := r.parseValue(p, modifier, part, opts)
		if err != nil {
			return Clause{}, true, err
		}
		c.Values = append(c.Values, v)
	}
	return c, true, nil
}

// chainTargets returns the stored types a chained reference may point at:
// the one a :Type modifier names, or those of the parameter's targets this
// server stores.
func (r *Registry) chainTargets(p *Param, modifier string) ([]string, error) {
	if modifier != "" {
		if _, ok := r.byType[modifier]; !ok {
			return nil, invalid(p.Name, "cannot chain through %s: this server does not store it", modifier)
		}
		return []string{modifier}, nil
	}
	var out []string
	for _, t := range r.Types() {
		if slices.Contains(p.Targets, t) || slices.Contains(p.Targets, "Resource") {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, invalid(p.Name, "cannot chain: it refers to %s, which this server does not store", strings.Join(p.Targets, ", "))
	}
	if len(out) > 1 {
		return nil, invalid(p.Name, "name the type to chain through, e.g. %s:%s.status", p.Name, out[0])
	}
	return out, nil
}

// checkModifier accepts the modifiers each parameter type supports.
func checkModifier(p *Param, m string, r *Registry) error {
	if m == "" || m == "missing" {
		return nil
	}
	ok := false
	switch p.Type {
	case TypeToken:
		ok = m == "not" || m == "text" || (m == "of-type" && p.isIdentifier())
	case TypeString:
		ok = m == "exact" || m == "contains"
	case TypeReference:
		if m == "identifier" {
			ok = true
		} else if _, stored := r.byType[m]; stored || r.model.IsResourceType(m) {
			ok = slices.Contains(p.Targets, m) || slices.Contains(p.Targets, "Resource")
		}
	case TypeURI:
		ok = m == "below" || m == "above"
	}
	if !ok {
		return invalid(p.Name, "the modifier :%s is not supported for this %s parameter", m, p.Type)
	}
	return nil
}

// isIdentifier reports whether the parameter indexes Identifier elements.
func (p *Param) isIdentifier() bool {
	for _, pt := range p.paths {
		if pt.elemType == "Identifier" {
			return true
		}
	}
	return false
}

func (r *Registry) parseValue(p *Param, modifier, raw string, opts Options) (Value, error) {
	if raw == "" {
		return Value{}, invalid(p.Name, "an empty value")
	}
	switch p.Type {
	case TypeToken:
		if modifier == "text" {
			return Value{Text: Normalize(unescape(raw))}, nil
		}
		if p.Name == "_id" && !strings.Contains(raw, "|") {
			return Value{Token: TokenValue{Code: unescape(raw)}}, nil
		}
		return parseToken(p.Name, modifier, raw)
	case TypeString:
		s := unescape(raw)
		if modifier != "exact" {
			s = Normalize(s)
		}
		return Value{Text: s}, nil
	case TypeURI:
		return Value{Text: unescape(raw)}, nil
	case TypeDate:
		prefix, rest := splitPrefix(raw)
		d, err := parseSearchDate(rest)
		if err != nil {
			return Value{}, invalid(p.Name, "%q is not a date such as 2026-03, 2026-03-01 or 2026-03-01T10:00:00Z", raw)
		}
		if prefix == "ap" {
			d = approximately(d, opts.Now)
		}
		return Value{Prefix: prefix, Date: d}, nil
	case TypeNumber:
		prefix, rest := splitPrefix(raw)
		n, err := parseNumber(rest)
		if err != nil {
			return Value{}, invalid(p.Name, "%q is not a number", raw)
		}
		return Value{Prefix: prefix, Number: n}, nil
	case TypeQuantity:
		return parseQuantity(p.Name, raw)
	case TypeReference:
		return r.parseReference(p, modifier, raw)
	case TypeComposite:
		parts := splitEscaped(raw, '$')
		if len(parts) != len(p.comps) {
			return Value{}, invalid(p.Name, "%q needs %d parts separated by $", raw, len(p.comps))
		}
		v := Value{}
		for i, part := range parts {
			cv, err := r.parseValue(p.comps[i], "", part, opts)
			if err != nil {
				return Value{}, err
			}
			v.Components = append(v.Components, cv)
		}
		return v, nil
	}
	return Value{}, invalid(p.Name, "searching %s parameters is not supported", p.Type)
}

func parseToken(name, modifier, raw string) (Value, error) {
	parts := splitEscaped(raw, '|')
	var t TokenValue
	switch {
	case modifier == "of-type":
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			return Value{}, invalid(name, "%q is not type-system|type-code|value", raw)
		}
		t = TokenValue{TypeSystem: unescape(parts[0]), TypeCode: unescape(parts[1]), Code: unescape(parts[2])}
	case len(parts) == 1:
		t = TokenValue{Code: unescape(parts[0])}
	case len(parts) == 2:
		t = TokenValue{System: unescape(parts[0]), Code: unescape(parts[1]), HasSystem: true}
		if t.System == "" && t.Code == "" {
			return Value{}, invalid(name, "%q has neither a system nor a code", raw)
		}
	default:
		return Value{}, invalid(name, "%q is not [system|]code", raw)
	}
	return Value{Token: t}, nil
}

func parseQuantity(name, raw string) (Value, error) {
	prefix, rest := splitPrefix(raw)
	parts := splitEscaped(rest, '|')
	if len(parts) != 1 && len(parts) != 3 {
		return Value{}, invalid(name, "%q is not number, number|system|code or number||unit", raw)
	}
	n, err := parseNumber(parts[0])
	if err != nil {
		return Value{}, invalid(name, "%q does not start with a number", raw)
	}
	q := QuantityValue{NumberValue: n}
	if len(parts) == 3 {
		q.System, q.Code = unescape(parts[1]), unescape(parts[2])
	}
	return Value{Prefix: prefix, Quantity: q}, nil
}

func (r *Registry) parseReference(p *Param, modifier, raw string) (Value, error) {
	s := unescape(raw)
	if p.Name == "medication" && modifier == "" && strings.Contains(raw, "|") {
		// medication=system|code: the medication's code, coded or contained.
		return parseToken(p.Name, "", raw)
	}
	if modifier == "identifier" {
		parts := splitEscaped(raw, '|')
		switch len(parts) {
		case 1:
			return Value{Reference: ReferenceValue{IdentValue: unescape(parts[0])}}, nil
		case 2:
			return Value{Reference: ReferenceValue{IdentSystem: unescape(parts[0]), IdentValue: unescape(parts[1])}}, nil
		}
		return Value{}, invalid(p.Name, "%q is not [system|]value", raw)
	}
	ref := fhir.ParseReference(s)
	switch ref.Kind {
	case fhir.RefLiteral:
		if modifier != "" && modifier != ref.Type {
			return Value{}, invalid(p.Name, "%q is not a %s", raw, modifier)
		}
		if ref.Base != "" && ref.Base != r.base {
			return Value{Reference: ReferenceValue{URL: s}}, nil // a resource on another server
		}
		return Value{Reference: ReferenceValue{Type: ref.Type, ID: ref.ID}}, nil
	case fhir.RefAbsolute:
		return Value{Reference: ReferenceValue{URL: s}}, nil
	}
	if !fhir.IsValidID(s) {
		return Value{}, invalid(p.Name, "%q is not Type/id, an id or an absolute URL", raw)
	}
	typ := modifier
	if typ == "" && len(p.Targets) == 1 && p.Targets[0] != "Resource" {
		typ = p.Targets[0]
	}
	return Value{Reference: ReferenceValue{Type: typ, ID: s}}, nil
}

var prefixes = []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}

// splitPrefix separates a comparison prefix from a value; eq when none.
func splitPrefix(raw string) (string, string) {
	if len(raw) > 2 && slices.Contains(prefixes, raw[:2]) {
		return raw[:2], raw[2:]
	}
	return "eq", raw
}

// parseSearchDate reads a search date: a FHIR date or dateTime, where a time
// may omit seconds and a missing zone means UTC.
func parseSearchDate(s string) (DateValue, error) {
	if dt, err := fhir.ParseDateTime(s); err == nil {
		return DateValue{Low: dt.Time.UnixMilli(), High: dt.End().UnixMilli() - 1}, nil
	}
	for _, l := range []struct {
		layout string
		span   time.Duration
	}{
		{"2006-01-02T15:04Z07:00", time.Minute},
		{"2006-01-02T15:04", time.Minute},
		{"2006-01-02T15:04:05", time.Second},
		{"2006-01-02T15:04:05.999999999", time.Millisecond},
	} {
		if t, err := time.Parse(l.layout, s); err == nil {
			return DateValue{Low: t.UnixMilli(), High: t.Add(l.span).UnixMilli() - 1}, nil
		}
	}
	return DateValue{}, fmt.Errorf("not a date: %q", s)
}

// approximately widens a date by a tenth of its distance from now, and at
// least a day, for the ap prefix.
func approximately(d DateValue, now time.Time) DateValue {
	gap := now.UnixMilli() - d.Low
	if gap < 0 {
		gap = -gap
	}
	widen := max(gap/10, int64(24*time.Hour/time.Millisecond))
	return DateValue{Low: d.Low - widen, High: d.High + widen}
}

// parseNumber reads a number and the range its written precision implies.
func parseNumber(s string) (NumberValue, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return NumberValue{}, fmt.Errorf("not a number: %q", s)
	}
	mantissa, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mantissa = s[:i]
		exp, _ = strconv.Atoi(s[i+1:])
	}
	decimals := 0
	if i := strings.IndexByte(mantissa, '.'); i >= 0 {
		decimals = len(mantissa) - i - 1
	}
	half := 0.5 * math.Pow(10, float64(exp-decimals))
	return NumberValue{Value: f, Low: f - half, High: f + half}, nil
}

// splitEscaped splits on sep, honouring \ escapes (\, \| \$ \\).
func splitEscaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (r *Registry) parseSort(q *Query, raw string) error {
	for _, key := range strings.Split(raw, ",") {
		key = strings.TrimSpace(key)
		desc := strings.HasPrefix(key, "-")
		name := strings.TrimPrefix(key, "-")
		p, ok := r.lookupAll(q.Types, name)
		if !ok || !p.Sortable() {
			return invalid("_sort", "%q is not a sortable search parameter of %s", name, strings.Join(q.Types, ", "))
		}
		q.Sort = append(q.Sort, Sort{Param: p, Descending: desc})
	}
	return nil
}

func (r *Registry) parseInclude(key, raw string) (Include, error) {
	parts := strings.Split(raw, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Include{}, invalid(key, "%q is not Type:param[:target] or Type:*", raw)
	}
	inc := Include{Type: parts[0], Iterate: strings.HasSuffix(key, ":iterate")}
	if _, ok := r.byType[inc.Type]; !ok {
		return Include{}, invalid(key, "%s is not a type this server stores", inc.Type)
	}
	if parts[1] == "*" {
		inc.Params = r.ReferenceParams(inc.Type)
	} else {
		p, ok := r.Lookup(inc.Type, parts[1])
		if !ok || p.Type != TypeReference {
			return Include{}, invalid(key, "%s is not a reference parameter of %s", parts[1], inc.Type)
		}
		inc.Params = []*Param{p}
	}
	if len(parts) == 3 {
		inc.Target = parts[2]
		if _, ok := r.byType[inc.Target]; !ok {
			return Include{}, invalid(key, "%s is not a type this server stores", inc.Target)
		}
	}
	return inc, nil
}

// parseHas parses _has:Type:ref:param=value (and nested _has chains).
func (r *Registry) parseHas(types []string, key, raw string, opts Options) (Clause, error) {
	rest := strings.TrimPrefix(key, "_has:")
	typ, rest, ok1 := strings.Cut(rest, ":")
	refName, rest, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || rest == "" {
		return Clause{}, invalid(key, "write _has:Type:reference:parameter=value")
	}
	if _, ok := r.byType[typ]; !ok {
		return Clause{}, invalid(key, "%s is not a type this server stores", typ)
	}
	ref, ok := r.Lookup(typ, refName)
	if !ok || ref.Type != TypeReference {
		return Clause{}, invalid(key, "%s is not a reference parameter of %s", refName, typ)
	}
	if !slices.Contains(ref.Targets, "Resource") && !slices.ContainsFunc(types, func(t string) bool { return slices.Contains(ref.Targets, t) }) {
		return Clause{}, invalid(key, "%s.%s does not refer to %s", typ, refName, strings.Join(types, " or "))
	}
	var inner Clause
	var err error
	if strings.HasPrefix(rest, "_has:") {
		inner, err = r.parseHas([]string{typ}, rest, raw, opts)
	} else {
		var known bool
		inner, known, err = r.parseClause([]string{typ}, rest, raw, opts)
		if err == nil && !known {
			err = invalid(key, "%s is not a search parameter of %s", rest, typ)
		}
	}
	if err != nil {
		return Clause{}, err
	}
	return Clause{Has: &Has{Type: typ, Ref: ref, Clause: inner}}, nil
}
