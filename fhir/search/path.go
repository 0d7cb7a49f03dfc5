package search

import (
	"fmt"
	"regexp"
	"strings"

	"infusion/fhir/model"
)

// path is one concrete element path an expression names, in JSON names:
// Observation.value.ofType(Quantity) is the path valueQuantity.
type path struct {
	steps    []step
	elemType string   // the type of the element at the end
	binding  string   // the required binding of a code element at the end
	targets  []string // .where(resolve() is X): only references to these types
}

type step struct {
	name  string
	group bool // Observation.component: values below belong to the composite group index+1
}

var (
	whereResolve = regexp.MustCompile(`\.where\(resolve\(\) is (\w+)\)$`)
	ofType       = regexp.MustCompile(`\.ofType\((\w+)\)`)
	asType       = regexp.MustCompile(`^(.*) as (\w+)$`)
)

// compile follows the FHIRPath subset the R4 search parameters use — paths,
// unions, ofType(T), "as T" and where(resolve() is T) — through the element
// model of base, expanding choice elements into their JSON names.
func compile(m *model.Model, base, expr string) ([]*path, error) {
	var out []*path
	for _, part := range strings.Split(expr, "|") {
		part = strings.TrimSpace(part)
		var targets []string
		if mm := whereResolve.FindStringSubmatch(part); mm != nil {
			targets = []string{mm[1]}
			part = part[:len(part)-len(mm[0])]
		}
		part = ofType.ReplaceAllString(part, ".<$1>")
		part = strings.NewReplacer("(", "", ")", "").Replace(part)
		if mm := asType.FindStringSubmatch(part); mm != nil {
			part = mm[1] + ".<" + mm[2] + ">"
		}
		segs := strings.Split(part, ".")
		if segs[0] != base && segs[0] != "Resource" && segs[0] != "DomainResource" {
			return nil, fmt.Errorf("expression %q is not on %s", part, base)
		}
		paths, err := follow(m, base, segs[1:])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", expr, err)
		}
		for _, p := range paths {
			p.targets = targets
		}
		out = append(out, paths...)
	}
	return out, nil
}

// follow resolves path segments from a type. A choice element followed by
// ofType(T) becomes its variant of type T; a choice element without one
// fans out into all its variants.
func follow(m *model.Model, typeName string, segs []string) ([]*path, error) {
	type partial struct {
		p        *path
		typeName string
	}
	parts := []partial{{p: &path{}, typeName: typeName}}
	for i := 0; i < len(segs); i++ {
		seg := segs[i]
		want := ""
		if i+1 < len(segs) && strings.HasPrefix(segs[i+1], "<") {
			want = strings.Trim(segs[i+1], "<>")
			i++
		}
		var next []partial
		for _, pt := range parts {
			t := m.Types[pt.typeName]
			if t == nil {
				return nil, fmt.Errorf("unknown type %s", pt.typeName)
			}
			candidates := t.Choices()[seg]
			if e := t.Element(seg); e != nil {
				candidates = []*model.Element{e}
			}
			if len(candidates) == 0 {
				return nil, fmt.Errorf("%s has no element %s", pt.typeName, seg)
			}
			for _, e := range candidates {
				if want != "" && !strings.EqualFold(e.Type, want) {
					continue
				}
				p := pt.p.clone()
				p.steps = append(p.steps, step{name: e.Name, group: e.Name == "component"})
				p.elemType, p.binding = e.Type, e.Binding
				next = append(next, partial{p: p, typeName: e.Type})
			}
		}
		if len(next) == 0 {
			return nil, fmt.Errorf("no element %s of type %s", seg, want)
		}
		parts = next
	}
	out := make([]*path, len(parts))
	for i, pt := range parts {
		out[i] = pt.p
	}
	return out, nil
}

func (p *path) clone() *path {
	c := *p
	c.steps = append([]step(nil), p.steps...)
	return &c
}
