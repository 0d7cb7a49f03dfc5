package fhir

import (
	"bytes"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// RefKind says what form a literal reference takes.
type RefKind uint8

// The forms of Reference.reference.
const (
	RefInvalid     RefKind = iota // not a reference FHIR allows
	RefLiteral                    // Type/id, Type/id/_history/v, or an absolute URL ending so
	RefContained                  // #id, or # for the containing resource
	RefURN                        // urn:uuid:… or urn:oid:…, resolved inside a Bundle
	RefConditional                // Type?search, resolved inside a transaction
	RefAbsolute                   // another absolute URL (no Type/id at its end)
)

// Reference is a parsed Reference.reference.
type Reference struct {
	Kind    RefKind
	Base    string // for an absolute literal: the URL before Type/id
	Type    string
	ID      string
	Version string
	Query   string // for a conditional reference: the search after "?"
}

// Relative returns the reference as "Type/id" (without version), or "" when
// it is not a literal reference.
func (r Reference) Relative() string {
	if r.Kind != RefLiteral {
		return ""
	}
	return r.Type + "/" + r.ID
}

// ParseReference parses a reference string.
func ParseReference(s string) Reference {
	switch {
	case strings.HasPrefix(s, "#"):
		id := s[1:]
		if id != "" && !IsValidID(id) {
			return Reference{Kind: RefInvalid}
		}
		return Reference{Kind: RefContained, ID: id}
	case strings.HasPrefix(s, "urn:uuid:"), strings.HasPrefix(s, "urn:oid:"):
		return Reference{Kind: RefURN}
	}
	if i := strings.IndexByte(s, '?'); i > 0 && !strings.Contains(s[:i], "/") {
		if !isTypeName(s[:i]) {
			return Reference{Kind: RefInvalid}
		}
		return Reference{Kind: RefConditional, Type: s[:i], Query: s[i+1:]}
	}
	absolute := strings.Contains(s, "://")
	path := s
	base := ""
	if absolute {
		scheme := strings.Index(s, "://")
		slash := strings.IndexByte(s[scheme+3:], '/')
		if slash < 0 {
			return Reference{Kind: RefAbsolute}
		}
		path = s[scheme+3+slash+1:]
		base = s[:scheme+3+slash]
	}
	segs := strings.Split(path, "/")
	version := ""
	if n := len(segs); n >= 4 && segs[n-2] == "_history" {
		version = segs[n-1]
		segs = segs[:n-2]
	}
	n := len(segs)
	if n < 2 || !isTypeName(segs[n-2]) || !IsValidID(segs[n-1]) || (version != "" && !IsValidID(version)) {
		if absolute {
			return Reference{Kind: RefAbsolute}
		}
		return Reference{Kind: RefInvalid}
	}
	if !absolute && n != 2 {
		return Reference{Kind: RefInvalid}
	}
	if absolute && n > 2 {
		base += "/" + strings.Join(segs[:n-2], "/")
	}
	return Reference{Kind: RefLiteral, Base: base, Type: segs[n-2], ID: segs[n-1], Version: version}
}

// IsValidID reports whether s is a FHIR id: 1 to 64 of A-Z a-z 0-9 - and .
func IsValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// EachReference calls fn with every Reference.reference value of a decoded
// resource — anywhere in it, extensions and contained resources included.
func EachReference(tree map[string]any, fn func(ref string)) {
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, child := range x {
				if s, ok := child.(string); ok && k == "reference" {
					fn(s)
				} else {
					walk(child)
				}
			}
		case []any:
			for _, child := range x {
				walk(child)
			}
		}
	}
	walk(tree)
}

// RewriteReferences returns the JSON of a parsed resource with every
// Reference.reference value for which fn returns true replaced by fn's
// answer — anywhere in the resource, extensions and contained resources
// included — and whether anything changed. Everything else is kept as it
// is. The JSON is not checked again: Parse did that.
func RewriteReferences(raw []byte, fn func(ref string) (string, bool)) ([]byte, bool, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(raw), jsontext.AllowDuplicateNames(true))
	var out bytes.Buffer
	out.Grow(len(raw))
	enc := jsontext.NewEncoder(&out, jsontext.AllowDuplicateNames(true))
	changed := false
	name := ""
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
		kind, n := dec.StackIndex(dec.StackDepth())
		if kind == '{' && n%2 == 1 { // a member name
			name = tok.String()
			if err := enc.WriteToken(tok); err != nil {
				return nil, false, err
			}
			continue
		}
		if kind == '{' && tok.Kind() == '"' && name == "reference" {
			if s, ok := fn(tok.String()); ok {
				changed = true
				tok = jsontext.String(s)
			}
		}
		if err := enc.WriteToken(tok); err != nil {
			return nil, false, err
		}
	}
	return bytes.TrimRight(out.Bytes(), "\n"), changed, nil
}
