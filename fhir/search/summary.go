package search

import (
	"slices"
	"strings"
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
func (r *Registry) Keep(q *Query, typeName string) func(name string) bool {
	var allowed []string
	switch {
	case len(q.Elements) > 0:
		allowed = append(slices.Clone(q.Elements), mandatoryElements[typeName]...)
	case q.Summary == "true":
		allowed = summaryElements[typeName]
	case q.Summary == "text":
		allowed = append([]string{"text"}, mandatoryElements[typeName]...)
	case q.Summary == "data":
		return func(name string) bool { return name != "text" }
	default:
		return nil
	}
	t := r.model.Types[typeName]
	return func(name string) bool {
		name = strings.TrimPrefix(name, "_") // a primitive's extension goes with it
		if slices.Contains(allowed, name) {
			return true
		}
		e := t.Element(name) // a choice variant goes with its choice: valueQuantity with value
		return e != nil && e.Choice != "" && slices.Contains(allowed, e.Choice)
	}
}
