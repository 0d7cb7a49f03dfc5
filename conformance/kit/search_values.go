package kit

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"infusion/conformance/kit/fhirpath"
)

// paramDef is what the search suite knows of a declared search parameter:
// its type, its FHIRPath expression and, for a composite, its components.
type paramDef struct {
	name, typ, expr string
	components      []string
}

// paramDef finds the parameter name of typ: the type from the
// CapabilityStatement, the expression from its documentation when that
// is a FHIRPath expression on the type (this server puts it there), else
// from the standard R4 table.
func (r *runner) paramDef(typ, name string) (paramDef, bool) {
	d := paramDef{name: name}
	found := false
	for _, cr := range r.caps.resources() {
		if cr.Type != typ {
			continue
		}
		for _, p := range cr.SearchParam {
			if p.Name == name {
				d.typ, found = p.Type, true
				if _, err := fhirpath.Parse(rewriteExpr(typ, p.Documentation)); err == nil && exprOnType(typ, p.Documentation) {
					d.expr = p.Documentation
				}
			}
		}
	}
	for _, rest := range r.caps.Rest {
		for _, p := range rest.SearchParam {
			if p.Name == name && !found {
				d.typ, found = p.Type, true
				if _, err := fhirpath.Parse(rewriteExpr(typ, p.Documentation)); err == nil && exprOnType(typ, p.Documentation) {
					d.expr = p.Documentation
				}
			}
		}
	}
	std, ok := stdParams[typ+"."+name]
	if !ok {
		std, ok = stdParams["Resource."+name]
	}
	if ok {
		if d.expr == "" {
			d.expr = std.expr
		}
		d.components = std.components
	}
	return d, found
}

// exprOnType reports whether an expression starts from the type (or
// Resource), as search parameter expressions do, and not from prose.
func exprOnType(typ, expr string) bool {
	e := strings.TrimLeft(strings.TrimSpace(expr), "(")
	return strings.HasPrefix(e, typ+".") || strings.HasPrefix(e, "Resource.") || e == typ || strings.HasPrefix(e, typ+" ")
}

var (
	ofTypeRe  = regexp.MustCompile(`\.(\w+)\.ofType\((\w+)\)`)
	asTypeRe  = regexp.MustCompile(`\.(\w+)\s+as\s+(\w+)`)
	resolveRe = regexp.MustCompile(`\.where\(resolve\(\) is (\w+)\)`)
)

// rewriteExpr rewrites what search parameter expressions use outside the
// kit's FHIRPath subset: X.value.ofType(Quantity) and X.value as Quantity
// become X.valueQuantity, Resource. becomes the type, and
// .where(resolve() is T) is dropped (paramValues keeps the references to
// T instead).
func rewriteExpr(typ, expr string) string {
	choice := func(m string, re *regexp.Regexp) string {
		sub := re.FindStringSubmatch(m)
		t := []rune(sub[2])
		t[0] = unicode.ToUpper(t[0])
		return "." + sub[1] + string(t)
	}
	expr = ofTypeRe.ReplaceAllStringFunc(expr, func(m string) string { return choice(m, ofTypeRe) })
	expr = asTypeRe.ReplaceAllStringFunc(expr, func(m string) string { return choice(m, asTypeRe) })
	expr = resolveRe.ReplaceAllString(expr, "")
	return strings.ReplaceAll(expr, "Resource.", typ+".")
}

// paramValues evaluates the parameter's expression on res and returns the
// search values it gives, by the parameter's type: token system|code,
// reference Type/id, date the date (a Period's start), quantity
// value|system|code, string and uri the text, composite the first value
// of each component joined with $. why says why there is none.
func (r *runner) paramValues(typ, name string, res map[string]any) (vals []string, why string) {
	d, _ := r.paramDef(typ, name)
	if d.typ == "composite" {
		if len(d.components) != 2 {
			return nil, fmt.Sprintf("the kit does not know the components of the composite parameter %s", name)
		}
		var parts []string
		for _, c := range d.components {
			v, why := r.paramValues(typ, c, res)
			if len(v) == 0 {
				return nil, why
			}
			parts = append(parts, v[0])
		}
		return []string{strings.Join(parts, "$")}, ""
	}
	if d.expr == "" {
		return nil, fmt.Sprintf("the kit has no FHIRPath expression for %s (the CapabilityStatement's documentation gives none, and it is not a standard R4 parameter of %s)", name, typ)
	}
	items, err := fhirpath.Evaluate(res, rewriteExpr(typ, d.expr), fhirpath.Env{})
	if err != nil {
		return nil, fmt.Sprintf("the kit cannot evaluate the expression of %s, %q: %v", name, d.expr, err)
	}
	only := ""
	if m := resolveRe.FindStringSubmatch(d.expr); m != nil {
		only = m[1] + "/"
	}
	for _, it := range items {
		for _, v := range valuesOf(d.typ, it) {
			if v != "" && strings.HasPrefix(v, only) && !slices.Contains(vals, v) {
				vals = append(vals, v)
			}
		}
	}
	if len(vals) == 0 {
		return nil, fmt.Sprintf("the kit's data built to match gives %s (%s) no value", name, d.expr)
	}
	return vals, ""
}

// valuesOf turns one item an expression gave into search values of the
// parameter type ptype.
func valuesOf(ptype string, it any) []string {
	str := func(v any) string { // the text of a primitive, "" for anything else
		switch v.(type) {
		case nil, map[string]any, []any:
			return ""
		}
		return fhirpath.String(v)
	}
	m, isMap := it.(map[string]any)
	if !isMap {
		if s := str(it); s != "" {
			return []string{s}
		}
		return nil
	}
	switch ptype {
	case "token":
		if cs, ok := m["coding"].([]any); ok {
			var out []string
			for _, c := range cs {
				out = append(out, valuesOf(ptype, c)...)
			}
			return out
		}
		if code := str(m["code"]); code != "" {
			return []string{str(m["system"]) + "|" + code}
		}
		if v := str(m["value"]); v != "" { // Identifier
			return []string{str(m["system"]) + "|" + v}
		}
	case "reference":
		if s := str(m["reference"]); s != "" {
			return []string{s}
		}
	case "date":
		if s := str(m["start"]); s != "" {
			return []string{s}
		}
		if s := str(m["end"]); s != "" {
			return []string{s}
		}
	case "quantity":
		if v := str(m["value"]); v != "" {
			return []string{v + "|" + str(m["system"]) + "|" + str(m["code"])}
		}
	case "string":
		if s := str(m["text"]); s != "" {
			return []string{s}
		}
	}
	return nil
}

// paramValue is the first search value of a parameter in res.
func (r *runner) paramValue(typ, name string, res map[string]any) (string, bool) {
	v, _ := r.paramValues(typ, name, res)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// distinct returns the first of the matching resource's values that the
// non-matching resource does not have (for strings: does not start with,
// ignoring case, as a string search matches).
func distinct(ptype string, match, other []string) (string, bool) {
	for _, v := range match {
		clash := slices.ContainsFunc(other, func(o string) bool {
			if ptype == "string" {
				return strings.HasPrefix(strings.ToLower(o), strings.ToLower(v))
			}
			return o == v
		})
		if !clash {
			return v, true
		}
	}
	return "", false
}
