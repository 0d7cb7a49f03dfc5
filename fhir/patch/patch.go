// Package patch applies the two patch formats of FHIR R4's patch
// interaction to a resource: JSON Patch (RFC 6902, through a maintained
// library) and FHIRPath Patch (a Parameters resource,
// https://hl7.org/fhir/R4/fhirpatch.html). Both return the patched JSON; the
// caller validates it like any other resource.
package patch

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"infusion/fhir/model"
)

// ErrInvalid marks a patch document that is malformed; ErrNotApplicable a
// well-formed patch that does not apply to the resource (a path that
// selects nothing, a failed test).
var (
	ErrInvalid       = errors.New("invalid patch")
	ErrNotApplicable = errors.New("patch does not apply")
)

// JSONPatch applies an RFC 6902 JSON Patch document to a resource.
func JSONPatch(resource, document []byte) ([]byte, error) {
	p, err := jsonpatch.DecodePatch(document)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	opts := jsonpatch.NewApplyOptions()
	opts.SupportNegativeIndices = false // RFC 6902 has none
	opts.EnsurePathExistsOnAdd = false
	out, err := p.ApplyWithOptions(resource, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotApplicable, err)
	}
	return out, nil
}

// FHIRPathPatch applies a FHIRPath Patch (a Parameters resource, decoded)
// to a resource tree, in place. Paths are the FHIRPath subset patches use:
// the type, element names, [n] indexes, first() and last().
func FHIRPathPatch(m *model.Model, tree, parameters map[string]any) error {
	if parameters["resourceType"] != "Parameters" {
		return fmt.Errorf("%w: a FHIRPath Patch is a Parameters resource", ErrInvalid)
	}
	ops, _ := parameters["parameter"].([]any)
	if len(ops) == 0 {
		return fmt.Errorf("%w: the Parameters hold no operation", ErrInvalid)
	}
	for i, op := range ops {
		o, _ := op.(map[string]any)
		if o["name"] != "operation" {
			return fmt.Errorf("%w: parameter %d is not an operation", ErrInvalid, i)
		}
		if err := apply(m, tree, parts(o)); err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	return nil
}

// parts returns an operation's parts by name.
func parts(op map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	list, _ := op["part"].([]any)
	for _, p := range list {
		pm, _ := p.(map[string]any)
		if name, ok := pm["name"].(string); ok {
			out[name] = pm
		}
	}
	return out
}

// primitive returns the value[x] of a part as a string (valueString,
// valueCode, valueInteger …).
func primitive(part map[string]any) (string, bool) {
	for k, v := range part {
		if strings.HasPrefix(k, "value") {
			switch x := v.(type) {
			case string:
				return x, true
			default:
				return fmt.Sprint(x), true
			}
		}
	}
	return "", false
}

// value returns the value a part carries, as JSON, and its FHIR type name
// ("Quantity" for valueQuantity, "" when built from parts).
func value(part map[string]any) (any, string, error) {
	for k, v := range part {
		if t, ok := strings.CutPrefix(k, "value"); ok && t != "" {
			return v, t, nil
		}
	}
	if sub, ok := part["part"].([]any); ok {
		obj := map[string]any{}
		for _, s := range sub {
			sm, _ := s.(map[string]any)
			name, _ := sm["name"].(string)
			v, _, err := value(sm)
			if err != nil {
				return nil, "", err
			}
			obj[name] = v
		}
		return obj, "", nil
	}
	return nil, "", fmt.Errorf("%w: the value part has no value", ErrInvalid)
}

func apply(m *model.Model, tree map[string]any, p map[string]map[string]any) error {
	typ, ok := primitive(p["type"])
	if !ok {
		return fmt.Errorf("%w: no type", ErrInvalid)
	}
	path, ok := primitive(p["path"])
	if !ok {
		return fmt.Errorf("%w: no path", ErrInvalid)
	}
	locs, err := evaluate(m, tree, path)
	if err != nil {
		return err
	}
	var items []location // what delete and replace act on: not whole lists
	for _, l := range locs {
		if !l.list {
			items = append(items, l)
		}
	}
	one := func() (location, error) {
		if typ == "insert" || typ == "move" {
			for _, l := range locs {
				if l.list {
					return l, nil
				}
			}
			return location{}, fmt.Errorf("%w: %s is not a list", ErrNotApplicable, path)
		}
		locs := items
		if len(locs) != 1 {
			return location{}, fmt.Errorf("%w: %s selects %d elements, not one", ErrNotApplicable, path, len(locs))
		}
		return locs[0], nil
	}
	switch typ {
	case "delete":
		// Deleting nothing is not an error (fhirpatch.html); delete from the
		// end so that indexes stay right.
		for i := len(items) - 1; i >= 0; i-- {
			items[i].remove()
		}
		return nil
	case "replace":
		l, err := one()
		if err != nil {
			return err
		}
		v, t, err := value(p["value"])
		if err != nil {
			return err
		}
		l.set(v, t)
		return nil
	case "add":
		l, err := one()
		if err != nil {
			return err
		}
		parent, ok := l.get().(map[string]any)
		if !ok {
			return fmt.Errorf("%w: %s is not an element that has children", ErrNotApplicable, path)
		}
		name, ok := primitive(p["name"])
		if !ok {
			return fmt.Errorf("%w: add needs a name", ErrInvalid)
		}
		v, t, err := value(p["value"])
		if err != nil {
			return err
		}
		key := name
		def := m.Types[l.typ]
		if t != "" && def != nil && len(def.Choices()[name]) > 0 {
			key = name + t // a choice element: valueQuantity
		}
		repeats := def != nil && def.Element(key) != nil && def.Element(key).Array
		existing, exists := parent[key]
		switch list, isList := existing.([]any); {
		case isList:
			parent[key] = append(list, v)
		case exists:
			return fmt.Errorf("%w: %s.%s exists already and does not repeat", ErrNotApplicable, path, name)
		case repeats:
			parent[key] = []any{v}
		default:
			parent[key] = v
		}
		return nil
	case "insert", "move":
		l, err := one()
		if err != nil {
			return err
		}
		list := l.obj[l.key].([]any)
		dest, err := index(p, "index", "destination", typ)
		if err != nil {
			return err
		}
		var item any
		if typ == "insert" {
			if item, _, err = value(p["value"]); err != nil {
				return err
			}
		} else {
			src, err := index(p, "source", "source", typ)
			if err != nil {
				return err
			}
			if src >= len(list) {
				return fmt.Errorf("%w: source %d is past the end of %s", ErrNotApplicable, src, path)
			}
			item = list[src]
			list = append(list[:src:src], list[src+1:]...)
		}
		if dest > len(list) {
			return fmt.Errorf("%w: index %d is past the end of %s", ErrNotApplicable, dest, path)
		}
		list = append(list[:dest], append([]any{item}, list[dest:]...)...)
		l.obj[l.key] = list
		return nil
	}
	return fmt.Errorf("%w: unknown operation type %q", ErrInvalid, typ)
}

// index reads an integer part: "index" for insert, "destination" and
// "source" for move.
func index(p map[string]map[string]any, insertName, moveName, typ string) (int, error) {
	name := insertName
	if typ == "move" {
		name = moveName
	}
	s, ok := primitive(p[name])
	n, err := strconv.Atoi(s)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s needs a %s of 0 or more", ErrInvalid, typ, name)
	}
	return n, nil
}

// location is an element in a tree: obj[key], or obj[key][index].
type location struct {
	obj   map[string]any
	key   string
	index int    // -1: the whole member
	step  string // the path's name for it (value for valueQuantity)
	typ   string // its FHIR type
	list  bool   // the whole of a repeating element
}

func (l location) get() any {
	if l.index < 0 {
		return l.obj[l.key]
	}
	return l.obj[l.key].([]any)[l.index]
}

func (l location) set(v any, typ string) {
	if l.index >= 0 {
		l.obj[l.key].([]any)[l.index] = v
		return
	}
	key := l.key
	if typ != "" && l.step != l.key { // a choice element takes the new value's type
		delete(l.obj, key)
		key = l.step + typ
	}
	l.obj[key] = v
}

func (l location) remove() {
	if l.index < 0 {
		delete(l.obj, l.key)
		return
	}
	list := l.obj[l.key].([]any)
	list = append(list[:l.index:l.index], list[l.index+1:]...)
	if len(list) == 0 {
		delete(l.obj, l.key)
		return
	}
	l.obj[l.key] = list
}

// evaluate resolves a path to the locations it selects, following the
// element model so that each location knows its type.
func evaluate(m *model.Model, tree map[string]any, path string) ([]location, error) {
	steps := strings.Split(path, ".")
	root, _ := tree["resourceType"].(string)
	if len(steps) == 0 || steps[0] != root {
		return nil, fmt.Errorf("%w: the path %q does not start with the resource type", ErrInvalid, path)
	}
	// The selection: the root, then the elements each step selects.
	type node struct {
		value any
		typ   string
	}
	current := []node{{tree, root}}
	// The resource itself, for add: a holder stands for its parent.
	locs := []location{{obj: map[string]any{"": tree}, key: "", index: -1, step: root, typ: root}}
	if len(steps) == 1 {
		return locs, nil
	}
	for n, step := range steps[1:] {
		last := n == len(steps)-2
		switch step {
		case "first()":
			locs, current = locs[:min(1, len(locs))], current[:min(1, len(current))]
			continue
		case "last()":
			if len(locs) > 0 {
				locs, current = locs[len(locs)-1:], current[len(current)-1:]
			}
			continue
		}
		name, idx, err := parseStep(step)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrInvalid, err)
		}
		var nextLocs []location
		var next []node
		for _, c := range current {
			obj, ok := c.value.(map[string]any)
			if !ok {
				continue
			}
			key, typ := resolve(m, c.typ, obj, name)
			switch v := obj[key].(type) {
			case nil:
			case []any:
				if idx < 0 && last {
					// The list as a whole, for insert and move; delete and
					// replace take its items below.
					nextLocs = append(nextLocs, location{obj: obj, key: key, index: -1, step: name, typ: typ, list: true})
				}
				for i, item := range v {
					if idx < 0 || idx == i {
						nextLocs = append(nextLocs, location{obj: obj, key: key, index: i, step: name, typ: typ})
						next = append(next, node{item, typ})
					}
				}
			default:
				if idx <= 0 {
					nextLocs = append(nextLocs, location{obj: obj, key: key, index: -1, step: name, typ: typ})
					next = append(next, node{v, typ})
				}
			}
		}
		locs, current = nextLocs, next
	}
	return locs, nil
}

// resolve finds the JSON key of a step in an object of a type — the name,
// or the variant of a choice element present (value → valueQuantity) — and
// the element's type.
func resolve(m *model.Model, typeName string, obj map[string]any, name string) (key, typ string) {
	t := m.Types[typeName]
	if t == nil {
		return name, ""
	}
	if e := t.Element(name); e != nil {
		return name, e.Type
	}
	for _, v := range t.Choices()[name] {
		if _, ok := obj[v.Name]; ok {
			return v.Name, v.Type
		}
	}
	return name, ""
}

// parseStep reads a name or name[n] step: the element name and the index
// (-1 for none).
func parseStep(step string) (name string, idx int, err error) {
	idx = -1
	if i := strings.IndexByte(step, '['); i >= 0 {
		n, err := strconv.Atoi(strings.TrimSuffix(step[i+1:], "]"))
		if !strings.HasSuffix(step, "]") || err != nil || n < 0 {
			return "", 0, fmt.Errorf("bad index in %q", step)
		}
		step, idx = step[:i], n
	}
	if step == "" {
		return "", 0, fmt.Errorf("an empty path step")
	}
	for _, r := range step {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			return "", 0, fmt.Errorf("the path step %q is outside the supported subset (names, [n], first(), last())", step)
		}
	}
	return step, idx, nil
}
