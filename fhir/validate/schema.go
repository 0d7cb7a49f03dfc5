package validate

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"infusion/fhir"
)

// fhir.schema.json is HL7's published JSON schema for FHIR R4 (4.0, CC0).
//
//go:embed fhir.schema.json
var schemaJSON []byte

const schemaURL = "fhir.schema.json"

// schemas holds the compiled definition of each resource type, compiled on
// first use. Each resource is validated against #/definitions/{type} rather
// than through the root oneOf, which costs some thirty times as much.
type schemas struct {
	byType   sync.Map   // type name → *jsonschema.Schema, read without locking
	mu       sync.Mutex // guards compiler, which is not safe for concurrent use
	compiler *jsonschema.Compiler
}

func newSchemas() (*schemas, error) {
	patched, err := patchSchema(schemaJSON)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft6
	if err := c.AddResource(schemaURL, bytes.NewReader(patched)); err != nil {
		return nil, fmt.Errorf("validate: loading the R4 schema: %w", err)
	}
	return &schemas{compiler: c}, nil
}

// patchSchema adds 4.0.1 to the FHIR versions and lets nested resources (contained, Bundle.entry.resource,
// Parameters.parameter.resource …) through the enclosing type's schema: each
// is then validated against its own definition, which is much faster than
// the schema's oneOf over every type and names the element that is wrong
// instead of "does not match any of 146 schemas".
func patchSchema(data []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("validate: decoding the R4 schema: %w", err)
	}
	var replace func(v any) any
	replace = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			if x["$ref"] == "#/definitions/ResourceList" {
				return map[string]any{"type": "object"}
			}
			// The schema was published with 4.0.0; its FHIRVersion codes
			// lack the 4.0.1 technical correction that R4 servers report.
			if enum, ok := x["enum"].([]any); ok && len(enum) > 0 && enum[len(enum)-1] == "4.0.0" {
				x["enum"] = append(enum, "4.0.1")
			}
			for k, child := range x {
				x[k] = replace(child)
			}
		case []any:
			for i, child := range x {
				x[i] = replace(child)
			}
		}
		return v
	}
	defs, _ := doc["definitions"].(map[string]any)
	for name, d := range defs {
		if name != "ResourceList" {
			defs[name] = replace(d)
		}
	}
	delete(doc, "oneOf")
	delete(doc, "discriminator")
	return json.Marshal(doc)
}

// forType returns the compiled schema of a resource type, compiling it on
// first use; schemas compiled already are found without a lock.
func (s *schemas) forType(typeName string) (*jsonschema.Schema, error) {
	if sch, ok := s.byType.Load(typeName); ok {
		return sch.(*jsonschema.Schema), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.byType.Load(typeName); ok {
		return sch.(*jsonschema.Schema), nil
	}
	sch, err := s.compiler.Compile(schemaURL + "#/definitions/" + typeName)
	if err != nil {
		return nil, fmt.Errorf("validate: compiling the schema of %s: %w", typeName, err)
	}
	s.byType.Store(typeName, sch)
	return sch, nil
}

// validate checks tree against the schema of typeName and returns one issue
// per failing leaf, located under path (e.g. "MedicationRequest.contained[0]").
func (s *schemas) validate(typeName, path string, tree map[string]any) ([]fhir.Issue, error) {
	sch, err := s.forType(typeName)
	if err != nil {
		return nil, err
	}
	err = sch.Validate(tree)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, err
	}
	var issues []fhir.Issue
	collectLeaves(ve, func(leaf *jsonschema.ValidationError) {
		issues = append(issues, schemaIssue(path, tree, leaf)...)
	})
	sort.SliceStable(issues, func(i, j int) bool { return issues[i].Expression[0] < issues[j].Expression[0] })
	return issues, nil
}

func collectLeaves(ve *jsonschema.ValidationError, f func(*jsonschema.ValidationError)) {
	if len(ve.Causes) == 0 {
		f(ve)
		return
	}
	for _, c := range ve.Causes {
		collectLeaves(c, f)
	}
}

var quotedNames = regexp.MustCompile(`'([^']*)'`)

// schemaIssue turns one failing schema keyword into issues with FHIRPath
// expressions. Unknown properties and missing properties are named one by one.
func schemaIssue(root string, tree map[string]any, ve *jsonschema.ValidationError) []fhir.Issue {
	at := pointerToPath(root, ve.InstanceLocation)
	keyword := ve.KeywordLocation[strings.LastIndex(ve.KeywordLocation, "/")+1:]
	issue := func(code fhir.IssueType, expr, msg string) fhir.Issue {
		return fhir.Issue{Severity: fhir.SeverityError, Code: code, Diagnostics: msg, Expression: []string{expr}}
	}
	switch keyword {
	case "additionalProperties":
		var out []fhir.Issue
		for _, m := range quotedNames.FindAllStringSubmatch(ve.Message, -1) {
			out = append(out, issue(fhir.IssueStructure, at+"."+m[1], fmt.Sprintf("unknown element %q", m[1])))
		}
		return out
	case "required":
		var out []fhir.Issue
		for _, m := range quotedNames.FindAllStringSubmatch(ve.Message, -1) {
			out = append(out, issue(fhir.IssueRequired, at+"."+m[1], fmt.Sprintf("missing required element %q", m[1])))
		}
		return out
	case "type":
		return []fhir.Issue{issue(fhir.IssueStructure, at, "wrong JSON type: "+ve.Message)}
	case "enum", "const":
		return []fhir.Issue{issue(fhir.IssueCodeInvalid, at, "invalid code: "+ve.Message)}
	case "pattern":
		return []fhir.Issue{issue(fhir.IssueValue, at, patternMessage(tree, ve))}
	}
	return []fhir.Issue{issue(fhir.IssueStructure, at, ve.Message)}
}

// pointerToPath turns a JSON pointer ("/dosageInstruction/0/timing") into a
// FHIRPath under root ("MedicationRequest.dosageInstruction[0].timing").
func pointerToPath(root, pointer string) string {
	var b strings.Builder
	b.WriteString(root)
	if pointer == "" {
		return b.String()
	}
	for _, seg := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
		if _, err := strconv.Atoi(seg); err == nil {
			b.WriteString("[" + seg + "]")
			continue
		}
		b.WriteString("." + seg)
	}
	return b.String()
}

// primitiveHints say what a value of a primitive type must look like, for
// the types whose schema pattern is hard to read.
var primitiveHints = map[string]string{
	"dateTime": "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a zone (Z or +hh:mm)",
	"instant":  "YYYY-MM-DDThh:mm:ss with a zone (Z or +hh:mm)",
	"date":     "YYYY, YYYY-MM or YYYY-MM-DD",
	"time":     "hh:mm:ss",
	"id":       "1 to 64 of A-Z, a-z, 0-9, - and .",
	"code":     "no leading, trailing or double whitespace",
	"uri":      "no whitespace",
	"decimal":  "a JSON number",
	"integer":  "a whole JSON number",
}

// patternMessage says which value failed which primitive's format, e.g.
// "2015-01-15T10:00" is not a valid dateTime (YYYY … with a zone).
func patternMessage(tree map[string]any, ve *jsonschema.ValidationError) string {
	typeName := ""
	if i := strings.Index(ve.AbsoluteKeywordLocation, "#/definitions/"); i >= 0 {
		rest := ve.AbsoluteKeywordLocation[i+len("#/definitions/"):]
		if j := strings.IndexByte(rest, '/'); j >= 0 && rest[j:] == "/pattern" {
			typeName = rest[:j] // a pattern on the primitive's own definition
		}
	}
	if typeName == "" {
		// An inline pattern on a choice variant: effectiveDateTime → dateTime.
		name := ve.InstanceLocation[strings.LastIndex(ve.InstanceLocation, "/")+1:]
		for t := range primitiveHints {
			if strings.HasSuffix(strings.ToLower(name), strings.ToLower(t)) {
				typeName = t
			}
		}
	}
	value := fmt.Sprint(valueAt(tree, ve.InstanceLocation))
	if typeName == "" {
		return fmt.Sprintf("invalid value %q: %s", value, ve.Message)
	}
	msg := fmt.Sprintf("%q is not a valid %s", value, typeName)
	if hint := primitiveHints[typeName]; hint != "" {
		msg += " (" + hint + ")"
	}
	return msg
}

// valueAt returns the value at a JSON pointer in tree, or nil.
func valueAt(tree map[string]any, pointer string) any {
	var v any = tree
	for _, seg := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		switch x := v.(type) {
		case map[string]any:
			v = x[strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}
