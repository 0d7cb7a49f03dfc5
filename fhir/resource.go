package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxDepth bounds the nesting of a resource's JSON. The deepest R4 resources
// need far fewer levels; the bound keeps hostile input from exhausting the stack.
const MaxDepth = 64

// Resource is a FHIR resource as received: the JSON exactly as sent and a
// generic tree of it for validation (objects as map[string]any, arrays as
// []any, numbers as json.Number so that decimal text such as 0.50 is kept).
type Resource struct {
	Type string         // resourceType
	ID   string         // id, or "" when absent
	Tree map[string]any // the decoded JSON
	raw  []byte
}

// Parse decodes a resource. It rejects what JSON allows but FHIR does not:
// duplicate member names, invalid UTF-8, a top level that is not an object,
// nesting deeper than MaxDepth, and a missing or malformed resourceType.
// Errors are *Error of KindInvalid with code "structure".
func Parse(data []byte) (*Resource, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, syntaxError(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, Errorf(KindInvalid, IssueStructure, "", "invalid JSON: unexpected data after the resource at byte %d", dec.InputOffset())
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, Errorf(KindInvalid, IssueStructure, "", "a resource must be a JSON object")
	}
	return FromTree(obj, data)
}

// FromTree makes a Resource from a decoded tree and its JSON text.
func FromTree(obj map[string]any, raw []byte) (*Resource, error) {
	rt, ok := obj["resourceType"].(string)
	if !ok {
		return nil, Errorf(KindInvalid, IssueRequired, "resourceType", "the resource has no resourceType (a string naming its type)")
	}
	if !isTypeName(rt) {
		return nil, Errorf(KindInvalid, IssueValue, "resourceType", "resourceType %q is not a FHIR resource type name", rt)
	}
	r := &Resource{Type: rt, Tree: obj, raw: raw}
	if id, ok := obj["id"].(string); ok {
		r.ID = id
	}
	return r, nil
}

// Raw returns the JSON of the resource as received.
func (r *Resource) Raw() []byte { return r.raw }

func isTypeName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func decodeValue(dec *jsontext.Decoder, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("nesting deeper than %d levels at %s", MaxDepth, dec.StackPointer())
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '{':
		obj := map[string]any{}
		for dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := tok.String()
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			obj[name] = v
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		return obj, nil
	case '[':
		arr := []any{}
		for dec.PeekKind() != ']' {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		return arr, nil
	case '"':
		return tok.String(), nil
	case '0':
		return json.Number(tok.String()), nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok.Kind())
}

// syntaxError turns a decoding error into a structure issue that names the
// place in the document, as a JSON pointer, when the decoder knows it.
func syntaxError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "jsontext: ")
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = "unexpected end of input"
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		loc := "byte " + strconv.FormatInt(se.ByteOffset, 10)
		if se.JSONPointer != "" {
			loc += " (" + string(se.JSONPointer) + ")"
		}
		return Errorf(KindInvalid, IssueStructure, "", "invalid JSON at %s: %v", loc, se.Err)
	}
	return Errorf(KindInvalid, IssueStructure, "", "invalid JSON: %s", msg)
}

// Meta is what the server sets on each stored version.
type Meta struct {
	VersionID   string
	LastUpdated string // a FHIR instant
}

// Encode returns the resource as the server stores and returns it: compact
// JSON with resourceType, id and meta first, meta.versionId and
// meta.lastUpdated set from m (any sent by the client are replaced), and every
// other member, with the client's meta members, exactly as received.
func (r *Resource) Encode(id string, m Meta) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(r.raw) + 96)
	enc := jsontext.NewEncoder(&out)
	dec := jsontext.NewDecoder(bytes.NewReader(r.raw))
	if _, err := dec.ReadToken(); err != nil { // {
		return nil, err
	}
	type member struct {
		name  string
		value jsontext.Value
	}
	var rest []member
	var clientMeta jsontext.Value
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		name := tok.String()
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		switch name {
		case "resourceType", "id":
		case "meta":
			clientMeta = v.Clone()
		default:
			rest = append(rest, member{name, v.Clone()})
		}
	}
	write := func(toks ...jsontext.Token) error {
		for _, t := range toks {
			if err := enc.WriteToken(t); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(jsontext.BeginObject, jsontext.String("resourceType"), jsontext.String(r.Type)); err != nil {
		return nil, err
	}
	if id != "" {
		if err := write(jsontext.String("id"), jsontext.String(id)); err != nil {
			return nil, err
		}
	}
	if err := write(jsontext.String("meta"), jsontext.BeginObject); err != nil {
		return nil, err
	}
	if m.VersionID != "" {
		if err := write(jsontext.String("versionId"), jsontext.String(m.VersionID)); err != nil {
			return nil, err
		}
	}
	if m.LastUpdated != "" {
		if err := write(jsontext.String("lastUpdated"), jsontext.String(m.LastUpdated)); err != nil {
			return nil, err
		}
	}
	if clientMeta != nil {
		md := jsontext.NewDecoder(bytes.NewReader(clientMeta))
		if _, err := md.ReadToken(); err != nil {
			return nil, err
		}
		for md.PeekKind() != '}' {
			tok, err := md.ReadToken()
			if err != nil {
				return nil, err
			}
			name := tok.String()
			v, err := md.ReadValue()
			if err != nil {
				return nil, err
			}
			if name == "versionId" || name == "lastUpdated" {
				continue
			}
			if err := enc.WriteToken(jsontext.String(name)); err != nil {
				return nil, err
			}
			if err := enc.WriteValue(v); err != nil {
				return nil, err
			}
		}
	}
	if err := write(jsontext.EndObject); err != nil {
		return nil, err
	}
	for _, mem := range rest {
		if err := enc.WriteToken(jsontext.String(mem.name)); err != nil {
			return nil, err
		}
		if err := enc.WriteValue(mem.value); err != nil {
			return nil, err
		}
	}
	if err := write(jsontext.EndObject); err != nil {
		return nil, err
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}
