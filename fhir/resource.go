package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxDepth bounds the nesting of a resource's JSON. The deepest R4 resources
// need far fewer levels; the bound keeps hostile input from exhausting the stack.
const MaxDepth = 64

// Resource is a FHIR resource as received: the JSON exactly as sent and a
// generic tree of it for validation (objects as map[string]any, arrays as
// []any, numbers as json.Number so that decimal text such as 0.50 is kept).
type Resource struct {
	Type    string         // resourceType
	ID      string         // id, or "" when absent
	Tree    map[string]any // the decoded JSON
	raw     []byte
	members []member // the top-level members as sent, in order
}

// member is a top-level member of the resource: its name and its value's
// JSON text as received.
type member struct {
	name  string
	value []byte
}

// Parse decodes a resource. It rejects what JSON allows but FHIR does not:
// duplicate member names, invalid UTF-8, a top level that is not an object,
// nesting deeper than MaxDepth, and a missing or malformed resourceType.
// Errors are *Error of KindInvalid with code "structure".
func Parse(data []byte) (*Resource, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if dec.PeekKind() != '{' {
		if _, err := dec.ReadToken(); err != nil {
			return nil, syntaxError(err)
		}
		return nil, Errorf(KindInvalid, IssueStructure, "", "a resource must be a JSON object")
	}
	d := &decoder{dec: dec, raw: data}
	v, err := d.value(0)
	if err != nil {
		return nil, syntaxError(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, Errorf(KindInvalid, IssueStructure, "", "invalid JSON: unexpected data after the resource at byte %d", dec.InputOffset())
	}
	obj := v.(map[string]any)
	rt, ok := obj["resourceType"].(string)
	if !ok {
		return nil, Errorf(KindInvalid, IssueRequired, "resourceType", "the resource has no resourceType (a string naming its type)")
	}
	if !isTypeName(rt) {
		return nil, Errorf(KindInvalid, IssueValue, "resourceType", "resourceType %q is not a FHIR resource type name", rt)
	}
	r := &Resource{Type: rt, Tree: obj, raw: data, members: d.members}
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

// decoder builds the generic tree and records the top-level members' text.
type decoder struct {
	dec     *jsontext.Decoder
	raw     []byte
	members []member
}

func (d *decoder) value(depth int) (any, error) {
	dec := d.dec
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
			start := dec.InputOffset()
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			obj[name] = v
			if depth == 0 {
				text := bytes.TrimLeft(d.raw[start:dec.InputOffset()], " \t\r\n:")
				d.members = append(d.members, member{name, text})
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		return obj, nil
	case '[':
		arr := []any{}
		for dec.PeekKind() != ']' {
			v, err := d.value(depth + 1)
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

// Prepared is a resource ready to be stored under an id: all of its JSON
// but meta.versionId and meta.lastUpdated, which the store fills in when it
// writes the version.
type Prepared struct {
	head []byte // {"resourceType":…,"id":…,"meta":{"versionId":"
	tail []byte // "  then the client's other meta members, }, the other members, }
}

// Prepare returns the resource as the server stores and returns it, with id
// (none when empty): compact JSON with resourceType, id and meta first,
// meta.versionId and meta.lastUpdated left for Bytes (any sent by the client
// are dropped), and every other member, with the client's other meta members,
// exactly as received.
func (r *Resource) Prepare(id string) (*Prepared, error) {
	var head, tail []byte
	head = append(head, `{"resourceType":`...)
	head, _ = jsontext.AppendQuote(head, r.Type)
	if id != "" {
		head = append(head, `,"id":`...)
		head, _ = jsontext.AppendQuote(head, id)
	}
	head = append(head, `,"meta":{"versionId":"`...)
	tail = append(tail, '"')
	var rest []byte
	for _, m := range r.members {
		switch m.name {
		case "resourceType", "id":
		case "meta":
			err := eachMember(m.value, func(name string, v []byte) {
				switch name {
				case "versionId", "_versionId", "lastUpdated", "_lastUpdated":
				default:
					tail = appendMember(tail, name, v)
				}
			})
			if err != nil {
				return nil, Errorf(KindInvalid, IssueStructure, "meta", "meta must be a JSON object: %v", err)
			}
		default:
			rest = appendMember(rest, m.name, m.value)
		}
	}
	tail = append(tail, '}')
	tail = append(tail, rest...)
	tail = append(tail, '}')
	return &Prepared{head: head, tail: tail}, nil
}

// Bytes returns the stored JSON of the version.
func (p *Prepared) Bytes(versionID int, lastUpdated time.Time) []byte {
	out := make([]byte, 0, len(p.head)+len(p.tail)+64)
	out = append(out, p.head...)
	out = strconv.AppendInt(out, int64(versionID), 10)
	out = append(out, `","lastUpdated":"`...)
	out = lastUpdated.UTC().AppendFormat(out, instantLayout)
	return append(out, p.tail...)
}

// eachMember calls fn with each member of a JSON object, in order.
func eachMember(object []byte, fn func(name string, v []byte)) error {
	dec := jsontext.NewDecoder(bytes.NewReader(object))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return fmt.Errorf("not a JSON object")
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		name := tok.String()
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		fn(name, v)
	}
	return nil
}

// appendMember appends ,"name":value with the value compacted (whitespace
// dropped; strings and numbers kept exactly as written).
func appendMember(dst []byte, name string, v []byte) []byte {
	dst = append(dst, ',')
	dst, _ = jsontext.AppendQuote(dst, name)
	dst = append(dst, ':')
	start := len(dst)
	dst = append(dst, v...)
	compact := jsontext.Value(dst[start:])
	if err := compact.Compact(); err != nil {
		return append(dst[:start], v...) // already validated JSON: cannot happen
	}
	return dst[:start+len(compact)]
}

// subsetted is the meta.tag a server adds to a resource it returns in part.
const subsetted = `{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED","display":"subsetted"}`

// Subset returns a stored resource with only the top-level elements keep
// accepts (resourceType, id and meta always stay), tagged SUBSETTED in
// meta.tag as R4 asks of _summary and _elements.
func Subset(stored []byte, keep func(name string) bool) ([]byte, error) {
	out := []byte{'{'}
	err := eachMember(stored, func(name string, v []byte) {
		switch {
		case name == "meta":
			v = tagSubsetted(v)
		case name == "resourceType" || name == "id" || keep(name):
		default:
			return
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out, _ = jsontext.AppendQuote(out, name)
		out = append(out, ':')
		out = append(out, v...)
	})
	return append(out, '}'), err
}

// tagSubsetted adds the SUBSETTED tag to a meta object.
func tagSubsetted(meta []byte) []byte {
	out := []byte{'{'}
	tagged := false
	eachMember(meta, func(name string, v []byte) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out, _ = jsontext.AppendQuote(out, name)
		out = append(out, ':')
		if name == "tag" && len(v) > 1 && v[0] == '[' {
			tagged = true
			if string(bytes.TrimSpace(v[1:len(v)-1])) == "" {
				out = append(out, "["+subsetted+"]"...)
				return
			}
			out = append(out, v[:len(v)-1]...)
			out = append(out, ","+subsetted+"]"...)
			return
		}
		out = append(out, v...)
	})
	if !tagged {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, `"tag":[`+subsetted+`]`...)
	}
	return append(out, '}')
}
