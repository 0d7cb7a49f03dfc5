// Package validate checks FHIR R4 resources in two layers before anything is
// stored: HL7's official JSON schema (each resource against its own
// definition), then the rules the schema cannot express — required primitive
// and choice elements, one value per choice, required bindings, reference
// target types, ele-1 and the other base invariants — from the R4 element model
// of package model.
package validate

import (
	"fmt"
	"sort"

	"infusion/fhir"
	"infusion/fhir/model"
)

// Validator validates resources. It is safe for concurrent use.
type Validator struct {
	schemas *schemas
	model   *model.Model
}

// New loads the schema and compiles the schemas of the given resource
// types now (others are compiled on first use); m is the element model.
func New(m *model.Model, types ...string) (*Validator, error) {
	s, err := newSchemas()
	if err != nil {
		return nil, err
	}
	for _, t := range types {
		if _, err := s.forType(t); err != nil {
			return nil, err
		}
	}
	return &Validator{schemas: s, model: m}, nil
}

// IsResourceType reports whether name is an R4 resource type.
func (v *Validator) IsResourceType(name string) bool { return v.model.IsResourceType(name) }

// Validate returns every problem found in r, errors first; none when the
// resource is valid. The error is for faults of the validator itself.
func (v *Validator) Validate(r *fhir.Resource) ([]fhir.Issue, error) {
	return v.validate(r, false)
}

// ValidateEnvelope is Validate without the independent resources inside r
// (Bundle.entry.resource, Parameters.parameter.resource), for a caller that
// checks each of them on its own; contained resources are checked.
func (v *Validator) ValidateEnvelope(r *fhir.Resource) ([]fhir.Issue, error) {
	return v.validate(r, true)
}

func (v *Validator) validate(r *fhir.Resource, shallow bool) ([]fhir.Issue, error) {
	if !v.model.IsResourceType(r.Type) {
		return []fhir.Issue{{Severity: fhir.SeverityError, Code: fhir.IssueNotSupported,
			Diagnostics: fmt.Sprintf("%q is not an R4 resource type", r.Type), Expression: []string{"resourceType"}}}, nil
	}
	w := walker{m: v.model, shallow: shallow}
	w.walkResource(r.Type, r.Tree, nil)
	issues, err := v.schemas.validate(r.Type, r.Type, r.Tree)
	if err != nil {
		return nil, err
	}
	for _, n := range w.nested {
		t, _ := n.tree["resourceType"].(string)
		if !v.model.IsResourceType(t) {
			continue // the walker reports it
		}
		more, err := v.schemas.validate(t, n.path, n.tree)
		if err != nil {
			return nil, err
		}
		issues = append(issues, more...)
	}
	sort.SliceStable(w.issues, func(i, j int) bool { return w.issues[i].Expression[0] < w.issues[j].Expression[0] })
	return dedupe(append(issues, w.issues...)), nil
}

// dedupe drops an issue when an earlier one has the same code and place:
// the schema and the walker both see, say, a missing required element.
func dedupe(issues []fhir.Issue) []fhir.Issue {
	seen := map[string]bool{}
	out := issues[:0]
	for _, is := range issues {
		key := string(is.Code) + " " + fmt.Sprint(is.Expression)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, is)
	}
	return out
}
