// Package model is the FHIR R4 element model: every type with its elements,
// their types, cardinality, choice groups, reference targets and required
// bindings, and the codes of the value sets those bindings name. It is
// generated from the R4 StructureDefinitions by internal/modelgen and
// embedded; validation and search indexing read it.
package model

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

//go:embed model.json
var modelJSON []byte

// Element is one element of a FHIR type, keyed by its JSON name; the
// variants of a choice element (valueQuantity, valueString …) are elements
// of their own that share Choice ("value").
type Element struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Choice   string   `json:"choice,omitempty"`
	Array    bool     `json:"array,omitempty"`
	Required bool     `json:"required,omitempty"`
	Binding  string   `json:"binding,omitempty"` // value set of a required binding
	Targets  []string `json:"targets,omitempty"` // allowed reference targets; "Resource" means any

	Primitive bool   `json:"-"` // Type is a primitive type
	Twin      string `json:"-"` // "_" + Name: the primitive extension's JSON name
}

// Type is a FHIR type: a resource, a datatype, a primitive, or a backbone
// element named by its path ("MedicationRequest.dispenseRequest").
type Type struct {
	Kind     string    `json:"kind"` // resource, complex-type, primitive-type or backbone
	Elements []Element `json:"elements"`

	byName   map[string]*Element
	choices  map[string][]*Element
	required []*Element
}

// Element returns the element with a JSON name, or nil.
func (t *Type) Element(name string) *Element { return t.byName[name] }

// Choices returns the choice groups ("value") with their variants.
func (t *Type) Choices() map[string][]*Element { return t.choices }

// Required returns the required primitive elements and, for each required
// choice group, one of its variants. (Required complex elements are left to
// the JSON schema, which lists them.)
func (t *Type) Required() []*Element { return t.required }

// Model is the decoded element model.
type Model struct {
	Types     map[string]*Type               `json:"types"`
	ValueSets map[string]map[string][]string `json:"valueSets"`

	codes map[string]map[string]bool // value set → "system|code" and "|code" → true
}

// Load decodes the embedded model.
func Load() (*Model, error) {
	var m Model
	if err := json.Unmarshal(modelJSON, &m); err != nil {
		return nil, fmt.Errorf("model: decoding model.json: %w", err)
	}
	for _, t := range m.Types {
		t.byName = make(map[string]*Element, len(t.Elements))
		t.choices = map[string][]*Element{}
		for i := range t.Elements {
			e := &t.Elements[i]
			e.Primitive = m.IsPrimitive(e.Type)
			e.Twin = "_" + e.Name
			t.byName[e.Name] = e
			if e.Choice != "" {
				if len(t.choices[e.Choice]) == 0 && e.Required {
					t.required = append(t.required, e)
				}
				t.choices[e.Choice] = append(t.choices[e.Choice], e)
				continue
			}
			if e.Required && e.Primitive {
				t.required = append(t.required, e)
			}
		}
	}
	m.codes = make(map[string]map[string]bool, len(m.ValueSets))
	for url, systems := range m.ValueSets {
		set := map[string]bool{}
		for system, codes := range systems {
			for _, c := range codes {
				set[system+"|"+c] = true
				set["|"+c] = true
			}
		}
		m.codes[url] = set
	}
	return &m, nil
}

// IsPrimitive reports whether typeName is a primitive type.
func (m *Model) IsPrimitive(typeName string) bool {
	t, ok := m.Types[typeName]
	return ok && t.Kind == "primitive-type"
}

// IsResourceType reports whether name is an R4 resource type.
func (m *Model) IsResourceType(name string) bool {
	t, ok := m.Types[name]
	return ok && t.Kind == "resource"
}

// InValueSet reports whether a code (of system; "" for any system) is in
// the value set of a required binding.
func (m *Model) InValueSet(valueSet, system, code string) bool {
	return m.codes[valueSet][system+"|"+code]
}
