package validate

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"infusion/fhir"
	"infusion/fhir/model"
)

// walker checks a resource tree against the element model: what the JSON
// schema cannot say (required primitives and choices, one value per choice,
// required bindings, reference targets, ele-1, primitive extension twins,
// control characters, integer ranges) and the base invariants.
type walker struct {
	m      *model.Model
	issues []fhir.Issue
	nested []nestedResource // resources inside the one walked, for the schema
	// shallow skips the independent resources inside the one walked
	// (Bundle.entry.resource, Parameters.parameter.resource); contained
	// resources are still checked.
	shallow bool
}

// nestedResource is a resource inside another: contained, a Bundle entry, a
// Parameters part.
type nestedResource struct {
	path string
	tree map[string]any
}

// scope is what a resource and the resources it contains share: local
// references ("#id") resolve within it.
type scope struct {
	contained  map[string]string // contained id → its resourceType
	referenced map[string]bool   // contained ids some reference points at
}

func (w *walker) report(code fhir.IssueType, path, format string, args ...any) {
	w.issues = append(w.issues, fhir.Issue{
		Severity:    fhir.SeverityError,
		Code:        code,
		Diagnostics: fmt.Sprintf(format, args...),
		Expression:  []string{path},
	})
}

// walkResource checks a resource; inside is non-nil for a contained resource
// and is then the scope of the resource that contains it.
func (w *walker) walkResource(path string, obj map[string]any, inside *scope) {
	typeName, _ := obj["resourceType"].(string)
	def, ok := w.m.Types[typeName]
	if !ok || def.Kind != "resource" {
		w.report(fhir.IssueValue, path+".resourceType", "%q is not an R4 resource type", typeName)
		return
	}
	sc := inside
	if inside == nil {
		sc = &scope{contained: map[string]string{}, referenced: map[string]bool{}}
		for i, c := range asArray(obj["contained"]) {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			id, _ := cm["id"].(string)
			ct, _ := cm["resourceType"].(string)
			cpath := index(path+".contained", i)
			switch {
			case id == "":
				w.report(fhir.IssueRequired, cpath+".id", "a contained resource needs an id so that the resource can refer to it")
			case sc.contained[id] != "":
				w.report(fhir.IssueValue, cpath+".id", "two contained resources have the id %q", id)
			default:
				sc.contained[id] = ct
			}
		}
	} else {
		w.checkContainedRules(path, obj)
	}
	w.walkObject(path, typeName, obj, sc)
	if inside == nil {
		for i, c := range asArray(obj["contained"]) {
			cm, _ := c.(map[string]any)
			id, _ := cm["id"].(string)
			if id != "" && !sc.referenced[id] {
				w.report(fhir.IssueInvariant, index(path+".contained", i),
					"dom-3: the contained resource %q is not referred to from elsewhere in the resource", id)
			}
		}
	}
}

// checkContainedRules applies dom-2, dom-4 and dom-5 to a contained resource.
func (w *walker) checkContainedRules(path string, obj map[string]any) {
	if _, ok := obj["contained"]; ok {
		w.report(fhir.IssueInvariant, path+".contained", "dom-2: a contained resource shall not contain resources")
	}
	meta, _ := obj["meta"].(map[string]any)
	if _, ok := meta["versionId"]; ok {
		w.report(fhir.IssueInvariant, path+".meta.versionId", "dom-4: a contained resource shall not have meta.versionId")
	}
	if _, ok := meta["lastUpdated"]; ok {
		w.report(fhir.IssueInvariant, path+".meta.lastUpdated", "dom-4: a contained resource shall not have meta.lastUpdated")
	}
	if _, ok := meta["security"]; ok {
		w.report(fhir.IssueInvariant, path+".meta.security", "dom-5: a contained resource shall not have a security label")
	}
}

func (w *walker) walkObject(path, typeName string, obj map[string]any, sc *scope) {
	def := w.m.Types[typeName]
	if def == nil {
		return
	}
	if len(obj) == 0 {
		w.report(fhir.IssueInvariant, path, "ele-1: an element must have a value or children; {} is not allowed")
		return
	}
	for name, v := range obj {
		if name == "resourceType" && def.Kind == "resource" {
			continue
		}
		if twin, ok := strings.CutPrefix(name, "_"); ok {
			if e := def.Element(twin); e != nil && e.Primitive {
				w.walkPrimitiveExtension(path, e, obj, v, sc)
			}
			continue
		}
		e := def.Element(name)
		if e == nil {
			continue // an unknown element: the schema names it
		}
		p := path + "." + name
		if !e.Array {
			w.walkValue(p, e, v, sc)
			continue
		}
		arr, ok := v.([]any)
		if !ok {
			continue // the schema reports the wrong JSON type
		}
		if len(arr) == 0 {
			w.report(fhir.IssueInvariant, p, "ele-1: an array must not be empty; leave the element out instead")
		}
		twins, _ := obj["_"+name].([]any)
		for i, item := range arr {
			if item == nil {
				if i >= len(twins) || twins[i] == nil {
					w.report(fhir.IssueInvariant, index(p, i), "ele-1: entry %d is null and has no extension in _%s", i, name)
				}
				continue
			}
			w.walkValue(index(p, i), e, item, sc)
		}
	}
	for group, variants := range def.Choices() {
		n := 0
		for _, e := range variants {
			if present(obj, e) {
				n++
			}
		}
		if n > 1 {
			var names []string
			for _, e := range variants {
				if present(obj, e) {
					names = append(names, e.Name)
				}
			}
			w.report(fhir.IssueStructure, path+"."+group+"[x]", "%s[x] takes one value, but %s were given", group, strings.Join(names, " and "))
		}
	}
	for _, e := range def.Required() {
		if e.Choice != "" {
			found := false
			for _, v := range def.Choices()[e.Choice] {
				if present(obj, v) {
					found = true
					break
				}
			}
			if !found {
				w.report(fhir.IssueRequired, path+"."+e.Choice+"[x]", "missing required element %s[x]", e.Choice)
			}
			continue
		}
		if !present(obj, e) {
			w.report(fhir.IssueRequired, path+"."+e.Name, "missing required element %q", e.Name)
		}
	}
	for _, inv := range invariants[typeName] {
		if msg := inv.check(obj); msg != "" {
			at := path
			if inv.at != nil {
				if name := inv.at(obj); name != "" {
					at += "." + name
				}
			}
			w.report(fhir.IssueInvariant, at, "%s: %s", inv.key, msg)
		}
	}
}

// present reports whether obj has element e, as a value or only as a
// primitive extension.
func present(obj map[string]any, e *model.Element) bool {
	if _, ok := obj[e.Name]; ok {
		return true
	}
	_, ok := obj[e.Twin]
	return ok
}

// has reports whether obj has the element name, as a value or only as a
// primitive extension.
func has(obj map[string]any, name string) bool {
	if _, ok := obj[name]; ok {
		return true
	}
	_, ok := obj["_"+name]
	return ok
}

func (w *walker) walkValue(path string, e *model.Element, v any, sc *scope) {
	switch {
	case e.Type == "Resource":
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		if w.shallow && e.Name != "contained" {
			return
		}
		w.nested = append(w.nested, nestedResource{path, obj})
		if e.Name == "contained" {
			w.walkResource(path, obj, sc)
		} else {
			w.walkResource(path, obj, nil) // an independent resource: its own scope
		}
		return
	case e.Primitive:
		w.checkPrimitive(path, e, v)
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return // the schema reports the wrong JSON type
	}
	w.walkObject(path, e.Type, obj, sc)
	switch e.Type {
	case "Reference":
		w.checkReference(path, e, obj, sc)
	case "Coding":
		if e.Binding != "" && !w.inValueSet(e.Binding, obj) {
			w.report(fhir.IssueCodeInvalid, path, "the coding is not in the required value set %s", e.Binding)
		}
	case "CodeableConcept":
		if e.Binding != "" {
			ok := false
			for _, c := range asArray(obj["coding"]) {
				if cm, _ := c.(map[string]any); cm != nil && w.inValueSet(e.Binding, cm) {
					ok = true
				}
			}
			if !ok {
				w.report(fhir.IssueCodeInvalid, path, "no coding is from the required value set %s", e.Binding)
			}
		}
	}
}

func (w *walker) inValueSet(binding string, coding map[string]any) bool {
	system, _ := coding["system"].(string)
	code, _ := coding["code"].(string)
	return w.m.InValueSet(binding, system, code)
}

// walkPrimitiveExtension checks "_name", the id and extensions of primitive
// element e, and that it lines up with the value array when e repeats.
func (w *walker) walkPrimitiveExtension(path string, e *model.Element, obj map[string]any, v any, sc *scope) {
	p := path + "._" + e.Name
	if !e.Array {
		if m, ok := v.(map[string]any); ok {
			w.walkObject(p, "Element", m, sc)
		}
		return
	}
	exts, ok := v.([]any)
	if !ok {
		return
	}
	values, _ := obj[e.Name].([]any)
	if values != nil && len(values) != len(exts) {
		w.report(fhir.IssueStructure, p, "_%s has %d entries but %s has %d; they must line up", e.Name, len(exts), e.Name, len(values))
		return
	}
	for i, x := range exts {
		if x == nil && values == nil {
			w.report(fhir.IssueInvariant, index(p, i), "ele-1: entry %d has neither a value nor an extension", i)
		}
		if m, ok := x.(map[string]any); ok {
			w.walkObject(index(p, i), "Element", m, sc)
		}
	}
}

// checkPrimitive checks what the schema's patterns miss: control characters,
// the range of integers, required bindings of codes, and XHTML narrative.
func (w *walker) checkPrimitive(path string, e *model.Element, v any) {
	switch x := v.(type) {
	case string:
		for _, r := range x {
			if r < 0x20 && r != '\t' && r != '\r' && r != '\n' {
				w.report(fhir.IssueValue, path, "the string contains the control character U+%04X", r)
				break
			}
		}
		if e.Binding != "" && e.Type == "code" && !w.m.InValueSet(e.Binding, "", x) {
			w.report(fhir.IssueCodeInvalid, path, "%q is not a code of the required value set %s", x, e.Binding)
		}
		if e.Type == "base64Binary" {
			if _, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(x), "")); err != nil {
				w.report(fhir.IssueValue, path, "the value is not valid base64")
			}
		}
		switch e.Type {
		case "date", "dateTime", "instant":
			w.checkCalendarDate(path, e.Type, x)
		}
		if e.Type == "xhtml" {
			if msg := checkXHTML(x); msg != "" {
				w.report(fhir.IssueValue, path, "%s", msg)
			}
		}
	case json.Number:
		switch e.Type {
		case "integer", "positiveInt", "unsignedInt":
			n, err := strconv.ParseInt(string(x), 10, 32)
			switch {
			case err != nil:
				w.report(fhir.IssueValue, path, "%s is not a FHIR %s: a whole number of 32 bits, without fraction or exponent", x, e.Type)
			case e.Type == "positiveInt" && n < 1:
				w.report(fhir.IssueValue, path, "%s is not a positiveInt: it must be 1 or more", x)
			case e.Type == "unsignedInt" && n < 0:
				w.report(fhir.IssueValue, path, "%s is not an unsignedInt: it must be 0 or more", x)
			}
		}
	}
}

// checkCalendarDate reports a date the schema's pattern lets through but the
// calendar does not have, such as 2026-02-30.
func (w *walker) checkCalendarDate(path, typeName, s string) {
	if len(s) < len("2006-01-02") {
		return // a year or a year and month: the pattern says it all
	}
	if _, err := time.Parse("2006-01-02", s[:10]); err != nil {
		w.report(fhir.IssueValue, path, "%q is not a valid %s: there is no such day", s, typeName)
	}
}

// checkReference checks a Reference: the literal reference is well formed,
// a local "#id" names a contained resource (ref-1), and the target type is
// one the element allows.
func (w *walker) checkReference(path string, e *model.Element, obj map[string]any, sc *scope) {
	ref, _ := obj["reference"].(string)
	typeName, _ := obj["type"].(string)
	if typeName != "" && !strings.Contains(typeName, ":") && !w.m.IsResourceType(typeName) {
		w.report(fhir.IssueValue, path+".type", "%q is not an R4 resource type", typeName)
		return
	}
	target := typeName
	if ref != "" {
		r := fhir.ParseReference(ref)
		switch r.Kind {
		case fhir.RefContained:
			if r.ID == "" {
				break // "#" refers to the containing resource
			}
			ct, ok := sc.contained[r.ID]
			if !ok {
				w.report(fhir.IssueInvariant, path, "ref-1: %q refers to a contained resource, but none has the id %q", ref, r.ID)
				return
			}
			sc.referenced[r.ID] = true
			target = ct
		case fhir.RefLiteral, fhir.RefConditional:
			if !w.m.IsResourceType(r.Type) {
				w.report(fhir.IssueValue, path, "%q does not name an R4 resource type (expected Type/id)", ref)
				return
			}
			if typeName != "" && typeName != r.Type {
				w.report(fhir.IssueValue, path+".type", "type %q does not match the reference %q", typeName, ref)
				return
			}
			target = r.Type
		case fhir.RefInvalid:
			w.report(fhir.IssueValue, path, "%q is not a valid reference (expected Type/id, an absolute URL, urn:uuid:…, or #id)", ref)
			return
		}
	}
	if target == "" || len(e.Targets) == 0 {
		return
	}
	for _, t := range e.Targets {
		if t == target || t == "Resource" {
			return
		}
	}
	w.report(fhir.IssueValue, path, "a reference to %s is not allowed here; it must refer to %s", target, strings.Join(e.Targets, " or "))
}

func asArray(v any) []any {
	a, _ := v.([]any)
	return a
}

// index returns the path of the i-th item of the array at path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
