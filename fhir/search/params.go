// Package search is FHIR search on the wire side: the R4 search parameter
// table of the stored types, the index entries a resource yields for each
// parameter, and the parsing of search requests into a Query that the store
// runs. See https://hl7.org/fhir/R4/search.html.
package search

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"infusion/fhir/model"
)

// Type is the type of a search parameter.
type Type string

// The R4 search parameter types.
const (
	TypeNumber    Type = "number"
	TypeDate      Type = "date"
	TypeString    Type = "string"
	TypeToken     Type = "token"
	TypeReference Type = "reference"
	TypeComposite Type = "composite"
	TypeQuantity  Type = "quantity"
	TypeURI       Type = "uri"
	TypeSpecial   Type = "special"
)

// Definition is one search parameter as published.
type Definition struct {
	Base       string // the resource type, or "Resource" for every type
	Name       string
	Type       Type
	URL        string   // canonical URL of the SearchParameter
	Expression string   // FHIRPath, the part for Base
	Targets    []string // reference targets; "Resource" means any
	Components []string // for a composite: the names of its component parameters
}

// Param is a search parameter of one resource type, ready to index and query.
type Param struct {
	Definition
	Key   string  // the index key: "Observation.code", or "_tag" for a common parameter
	paths []*path // the concrete element paths the expression names
	comps []*Param
}

// Registry holds the search parameters of the stored types.
type Registry struct {
	byType map[string]map[string]*Param
	model  *model.Model
	base   string // the server's own base URL: absolute references to it are local
}

// extractVersion changes whenever what Extract makes of a resource changes,
// so that the fingerprint asks for a rebuild of the stored index.
const extractVersion = 4

// NewRegistry compiles the parameters of the given resource types against
// the element model; an expression it cannot follow is an error. base is the
// server's own base URL ("" when it has none configured): an absolute
// reference that starts with it is a reference to a local resource.
func NewRegistry(m *model.Model, base string, types ...string) (*Registry, error) {
	r := &Registry{byType: map[string]map[string]*Param{}, model: m, base: strings.TrimRight(base, "/")}
	for _, t := range types {
		params := map[string]*Param{}
		for _, d := range definitions {
			if d.Base != t && d.Base != "Resource" {
				continue
			}
			p := &Param{Definition: d, Key: t + "." + d.Name}
			if d.Base == "Resource" {
				p.Key = d.Name
			}
			if d.Type != TypeComposite {
				paths, err := compile(m, t, d.Expression)
				if err != nil {
					return nil, fmt.Errorf("search: %s %s: %w", t, d.Name, err)
				}
				p.paths = paths
			}
			params[d.Name] = p
		}
		for _, p := range params {
			for _, c := range p.Components {
				cp, ok := params[c]
				if !ok {
					return nil, fmt.Errorf("search: %s %s: unknown component %s", t, p.Name, c)
				}
				p.comps = append(p.comps, cp)
			}
		}
		r.byType[t] = params
	}
	return r, nil
}

// Lookup returns a parameter of a type.
func (r *Registry) Lookup(typeName, name string) (*Param, bool) {
	p, ok := r.byType[typeName][name]
	return p, ok
}

// Params returns the parameters of a type, sorted by name.
func (r *Registry) Params(typeName string) []*Param {
	var out []*Param
	for _, p := range r.byType[typeName] {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Types returns the resource types the registry knows, sorted.
func (r *Registry) Types() []string {
	var out []string
	for t := range r.byType {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ReferenceParams returns the reference parameters of a type, for
// _include=Type:* and _revinclude=Type:*.
func (r *Registry) ReferenceParams(typeName string) []*Param {
	var out []*Param
	for _, p := range r.Params(typeName) {
		if p.Type == TypeReference {
			out = append(out, p)
		}
	}
	return out
}

// Fingerprint identifies the parameter table, the base URL and the way
// entries are extracted: when it changes, stored index rows are stale and
// must be rebuilt.
func (r *Registry) Fingerprint() string {
	var b strings.Builder
	for _, t := range r.Types() {
		for _, p := range r.Params(t) {
			fmt.Fprintf(&b, "%s|%s|%s|%s|%v\n", p.Key, p.Type, p.Expression, strings.Join(p.Targets, ","), p.Components)
		}
	}
	fmt.Fprintf(&b, "base %s\n", r.base)
	h := fnv.New64a()
	h.Write([]byte(b.String()))
	return fmt.Sprintf("v%d:%x", extractVersion, h.Sum64())
}

// ComponentParams returns a composite's component parameters, in order.
func (p *Param) ComponentParams() []*Param { return p.comps }

// Sortable reports whether results can be sorted by the parameter.
func (p *Param) Sortable() bool {
	switch p.Type {
	case TypeToken, TypeString, TypeDate, TypeQuantity, TypeReference, TypeURI, TypeNumber:
		return true
	}
	return false
}
