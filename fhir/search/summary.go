package search

import (
	"slices"
	"strings"
	"unicode"
)

// CompartmentParams returns the parameters of a type that put its resources
// in a Patient's compartment.
func (r *Registry) CompartmentParams(typeName string) []*Param {
	var out []*Param
	for _, name := range patientCompartment[typeName] {
		if p, ok := r.Lookup(typeName, name); ok {
			out = append(out, p)
		}
	}
	return out
}

// Keep returns which top-level elements of a resource of a type a search's
// _summary and _elements let through, or nil when the whole resource is
// returned. resourceType, id and meta are always kept.
func (q *Query) Keep(typeName string) func(name string) bool {
	var allowed []string
	switch {
	case len(q.Elements) > 0:
		allowed = append(q.Elements, mandatoryElements[typeName]...)
	case q.Summary == "true":
		allowed = summaryElements[typeName]
	case q.Summary == "text":
		allowed = append([]string{"text"}, mandatoryElements[typeName]...)
	case q.Summary == "data":
		return func(name string) bool { return name != "text" }
	default:
		return nil
	}
	return func(name string) bool {
		return slices.Contains(allowed, name) || slices.Contains(allowed, choiceName(name))
	}
}

// choiceName returns the choice element a JSON name belongs to
// (valueQuantity → value), or the name itself.
func choiceName(name string) string {
	name = strings.TrimPrefix(name, "_")
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			return name[:i]
		}
	}
	return name
}
