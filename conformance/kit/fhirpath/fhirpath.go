// Package fhirpath evaluates the subset of FHIRPath (https://hl7.org/fhirpath/)
// that TestScripts use, over FHIR JSON decoded as a generic tree
// (map[string]any, []any, string, bool, json.Number or float64).
//
// No maintained pure-Go FHIRPath engine was available from the Go module
// proxy when this was written, so the kit carries this small one.
//
// Supported:
//   - path navigation (Observation.code.coding.code; a leading type name
//     matches the resource it is evaluated on), choice types (value finds
//     valueQuantity, valueString, …), the indexer [n], $this;
//   - literals: 'strings' (with \' \\ \n \t \uXXXX escapes), numbers, true,
//     false, {} (empty), @date/@dateTime (compared as their text);
//   - functions: where(criteria), select(projection), exists([criteria]),
//     empty(), count(), first(), last(), tail(), not(), hasValue(),
//     toString(), resolve();
//   - operators: = != < > <= >= (strings, numbers, booleans; dates by their
//     text), and, or, xor, implies, | (union), + (numbers and strings);
//   - variables passed in (%resource, %context, %rootResource are the
//     resource evaluated on, unless given; any other %name comes from
//     Env.Vars).
//
// resolve() resolves a Reference (or a reference string) with Env.Resolve
// when it is set, otherwise against the entries of the Bundle the
// expression is evaluated on: the entry whose fullUrl equals the
// reference, or whose resource has the reference's Type/id.
//
// Outside the subset, and reported as an error naming it: every other
// function (ofType, as, is, iif, matches, startsWith, …), the type
// operators is/as, ~ and !~, in/contains as operators, * / div mod - and &,
// quantity literals, date arithmetic and precision-aware date comparison.
package fhirpath

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode"
)

// Env is what an expression is evaluated with.
type Env struct {
	// Vars are the %variables (without the %), each a collection.
	Vars map[string][]any
	// Resolve, when set, resolves a reference for resolve().
	Resolve func(ref string) (any, bool)
}

// Expr is a parsed expression.
type Expr struct {
	src  string
	root node
}

// Parse parses an expression.
func Parse(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, src: src}
	n, err := p.expr(-100)
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tEOF {
		return nil, fmt.Errorf("fhirpath: %q: unexpected %q at offset %d", src, p.peek().text, p.peek().pos)
	}
	return &Expr{src: src, root: n}, nil
}

// Evaluate parses src and evaluates it on resource.
func Evaluate(resource any, src string, env Env) ([]any, error) {
	e, err := Parse(src)
	if err != nil {
		return nil, err
	}
	return e.Evaluate(resource, env)
}

// Evaluate evaluates the expression on resource and returns the resulting
// collection.
func (e *Expr) Evaluate(resource any, env Env) ([]any, error) {
	ev := &evaluator{env: env, root: resource, src: e.src}
	var in []any
	if resource != nil {
		in = []any{resource}
	}
	return ev.eval(e.root, in, in)
}

// String returns the expression's text.
func (e *Expr) String() string { return e.src }

// Truth applies FHIRPath's singleton evaluation of a collection as a
// boolean: ok is false when the collection is empty (unknown).
func Truth(c []any) (value, ok bool, err error) {
	if len(c) == 0 {
		return false, false, nil
	}
	if len(c) > 1 {
		return false, false, fmt.Errorf("fhirpath: a collection of %d items where a single boolean is expected", len(c))
	}
	if b, isBool := c[0].(bool); isBool {
		return b, true, nil
	}
	return true, true, nil
}

// String returns the text of a primitive item (strings, numbers, booleans)
// and the JSON of anything else.
func String(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// ---- lexer

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tDate
	tVar
	tOp
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func lex(src string) ([]token, error) {
	var out []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/' && strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '\'':
			s, n, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			out = append(out, token{tString, s, i})
			i = n
		case c == '`':
			j := strings.IndexByte(src[i+1:], '`')
			if j < 0 {
				return nil, fmt.Errorf("fhirpath: %q: unterminated `identifier` at offset %d", src, i)
			}
			out = append(out, token{tIdent, src[i+1 : i+1+j], i})
			i += j + 2
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			out = append(out, token{tNumber, src[i:j], i})
			i = j
		case c == '@':
			j := i + 1
			for j < len(src) && strings.IndexByte("0123456789-:T.+Z", src[j]) >= 0 {
				j++
			}
			out = append(out, token{tDate, src[i+1 : j], i})
			i = j
		case c == '%':
			j := i + 1
			if j < len(src) && (src[j] == '\'' || src[j] == '`') {
				return nil, fmt.Errorf("fhirpath: %q: quoted %%variables are outside the supported subset", src)
			}
			for j < len(src) && isIdentChar(rune(src[j])) {
				j++
			}
			out = append(out, token{tVar, src[i+1 : j], i})
			i = j
		case c == '$' || c == '_' || unicode.IsLetter(rune(c)):
			j := i + 1
			for j < len(src) && isIdentChar(rune(src[j])) {
				j++
			}
			out = append(out, token{tIdent, src[i:j], i})
			i = j
		default:
			for _, op := range []string{"<=", ">=", "!=", "!~", "(", ")", "[", "]", ".", ",", "=", "<", ">", "|", "+", "-", "*", "/", "&", "~", "{", "}"} {
				if strings.HasPrefix(src[i:], op) {
					out = append(out, token{tOp, op, i})
					i += len(op)
					goto next
				}
			}
			return nil, fmt.Errorf("fhirpath: %q: unexpected character %q at offset %d", src, c, i)
		next:
		}
	}
	return append(out, token{tEOF, "", len(src)}), nil
}

func isIdentChar(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func lexString(src string, start int) (string, int, error) {
	var b strings.Builder
	i := start + 1
	for i < len(src) {
		c := src[i]
		switch c {
		case '\'':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(src) {
				break
			}
			i++
			switch src[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				if i+4 < len(src) {
					if r, err := strconv.ParseUint(src[i+1:i+5], 16, 32); err == nil {
						b.WriteRune(rune(r))
						i += 4
						break
					}
				}
				return "", 0, fmt.Errorf("fhirpath: %q: bad \\u escape at offset %d", src, i)
			default:
				b.WriteByte(src[i])
			}
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, fmt.Errorf("fhirpath: %q: unterminated string at offset %d", src, start)
}

// ---- parser

type node interface{}

type (
	literalNode struct{ value []any }
	varNode     struct{ name string }
	identNode   struct{ name string } // a name at the start of a path
	thisNode    struct{}
	// pathNode navigates from its target.
	memberNode struct {
		target node
		name   string
	}
	callNode struct {
		target node // nil: the focus
		name   string
		args   []node
	}
	indexNode struct{ target, index node }
	binNode   struct {
		op          string
		left, right node
	}
)

type parser struct {
	toks []token
	i    int
	src  string
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

// precedence of binary operators; higher binds tighter.
func precedence(t token) (string, int) {
	switch t.kind {
	case tOp:
		switch t.text {
		case "*", "/":
			return t.text, 7
		case "+", "-", "&":
			return t.text, 6
		case "|":
			return t.text, 5
		case "<", ">", "<=", ">=":
			return t.text, 4
		case "=", "!=", "~", "!~":
			return t.text, 3
		}
	case tIdent:
		switch t.text {
		case "is", "as":
			return t.text, 8
		case "div", "mod":
			return t.text, 7
		case "in", "contains":
			return t.text, 2
		case "and":
			return t.text, 1
		case "or", "xor":
			return t.text, 0
		case "implies":
			return t.text, -1
		}
	}
	return "", -100
}

func (p *parser) expr(min int) (node, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op, prec := precedence(p.peek())
		if op == "" || prec < min {
			return left, nil
		}
		tok := p.next()
		switch op {
		case "=", "!=", "<", ">", "<=", ">=", "and", "or", "xor", "implies", "|", "+":
		default:
			return nil, fmt.Errorf("fhirpath: %q: the operator %q (offset %d) is outside the supported subset", p.src, op, tok.pos)
		}
		right, err := p.expr(prec + 1)
		if err != nil {
			return nil, err
		}
		left = binNode{op: op, left: left, right: right}
	}
}

func (p *parser) unary() (node, error) {
	if t := p.peek(); t.kind == tOp && (t.text == "-" || t.text == "+") {
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return n, nil
		}
		if lit, ok := n.(literalNode); ok && len(lit.value) == 1 {
			if num, ok := lit.value[0].(json.Number); ok {
				return literalNode{[]any{json.Number("-" + num.String())}}, nil
			}
		}
		return nil, fmt.Errorf("fhirpath: %q: unary minus is supported on number literals only", p.src)
	}
	return p.postfix()
}

func (p *parser) postfix() (node, error) {
	n, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tOp && t.text == ".":
			p.next()
			id := p.next()
			if id.kind != tIdent {
				return nil, fmt.Errorf("fhirpath: %q: a name is expected after '.' at offset %d", p.src, id.pos)
			}
			if p.peek().kind == tOp && p.peek().text == "(" {
				args, err := p.args()
				if err != nil {
					return nil, err
				}
				n = callNode{target: n, name: id.text, args: args}
			} else {
				n = memberNode{target: n, name: id.text}
			}
		case t.kind == tOp && t.text == "[":
			p.next()
			idx, err := p.expr(-100)
			if err != nil {
				return nil, err
			}
			if c := p.next(); c.kind != tOp || c.text != "]" {
				return nil, fmt.Errorf("fhirpath: %q: ']' expected at offset %d", p.src, c.pos)
			}
			n = indexNode{target: n, index: idx}
		default:
			return n, nil
		}
	}
}

func (p *parser) args() ([]node, error) {
	p.next() // (
	var args []node
	if t := p.peek(); t.kind == tOp && t.text == ")" {
		p.next()
		return nil, nil
	}
	for {
		a, err := p.expr(-100)
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		t := p.next()
		if t.kind == tOp && t.text == ")" {
			return args, nil
		}
		if t.kind != tOp || t.text != "," {
			return nil, fmt.Errorf("fhirpath: %q: ',' or ')' expected at offset %d", p.src, t.pos)
		}
	}
}

func (p *parser) term() (node, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return literalNode{[]any{t.text}}, nil
	case tNumber:
		if p.peek().kind == tString || (p.peek().kind == tIdent && isCalendarUnit(p.peek().text)) {
			return nil, fmt.Errorf("fhirpath: %q: quantity literals are outside the supported subset", p.src)
		}
		return literalNode{[]any{json.Number(t.text)}}, nil
	case tDate:
		return literalNode{[]any{strings.TrimPrefix(t.text, "T")}}, nil
	case tVar:
		return varNode{t.text}, nil
	case tIdent:
		switch t.text {
		case "true":
			return literalNode{[]any{true}}, nil
		case "false":
			return literalNode{[]any{false}}, nil
		case "$this":
			return thisNode{}, nil
		}
		if strings.HasPrefix(t.text, "$") {
			return nil, fmt.Errorf("fhirpath: %q: %s is outside the supported subset", p.src, t.text)
		}
		if p.peek().kind == tOp && p.peek().text == "(" {
			args, err := p.args()
			if err != nil {
				return nil, err
			}
			return callNode{name: t.text, args: args}, nil
		}
		return identNode{t.text}, nil
	case tOp:
		switch t.text {
		case "(":
			n, err := p.expr(-100)
			if err != nil {
				return nil, err
			}
			if c := p.next(); c.kind != tOp || c.text != ")" {
				return nil, fmt.Errorf("fhirpath: %q: ')' expected at offset %d", p.src, c.pos)
			}
			return n, nil
		case "{":
			if c := p.next(); c.kind != tOp || c.text != "}" {
				return nil, fmt.Errorf("fhirpath: %q: '}' expected at offset %d", p.src, c.pos)
			}
			return literalNode{nil}, nil
		}
	}
	if t.kind == tEOF {
		return nil, fmt.Errorf("fhirpath: %q: unexpected end of expression", p.src)
	}
	return nil, fmt.Errorf("fhirpath: %q: unexpected %q at offset %d", p.src, t.text, t.pos)
}

func isCalendarUnit(s string) bool {
	switch strings.TrimSuffix(s, "s") {
	case "year", "month", "week", "day", "hour", "minute", "second", "millisecond":
		return true
	}
	return false
}

// ---- evaluator

type evaluator struct {
	env  Env
	root any
	src  string
}

func (ev *evaluator) errorf(format string, args ...any) error {
	return fmt.Errorf("fhirpath: %q: %s", ev.src, fmt.Sprintf(format, args...))
}

// eval evaluates n with focus (the input collection) and this ($this).
func (ev *evaluator) eval(n node, focus, this []any) ([]any, error) {
	switch n := n.(type) {
	case literalNode:
		return n.value, nil
	case thisNode:
		return this, nil
	case varNode:
		if v, ok := ev.env.Vars[n.name]; ok {
			return v, nil
		}
		switch n.name {
		case "resource", "context", "rootResource":
			if ev.root == nil {
				return nil, nil
			}
			return []any{ev.root}, nil
		case "ucum":
			return []any{"http://unitsofmeasure.org"}, nil
		case "sct":
			return []any{"http://snomed.info/sct"}, nil
		case "loinc":
			return []any{"http://loinc.org"}, nil
		}
		return nil, ev.errorf("the variable %%%s is not defined", n.name)
	case identNode:
		// A type name at the start of a path matches the resource itself.
		if len(n.name) > 0 && unicode.IsUpper(rune(n.name[0])) {
			var out []any
			matched := false
			for _, it := range focus {
				if m, ok := it.(map[string]any); ok && m["resourceType"] == n.name {
					out = append(out, it)
					matched = true
				}
			}
			if matched {
				return out, nil
			}
		}
		return member(focus, n.name), nil
	case memberNode:
		in, err := ev.eval(n.target, focus, this)
		if err != nil {
			return nil, err
		}
		return member(in, n.name), nil
	case indexNode:
		in, err := ev.eval(n.target, focus, this)
		if err != nil {
			return nil, err
		}
		idx, err := ev.eval(n.index, focus, this)
		if err != nil {
			return nil, err
		}
		if len(idx) != 1 {
			return nil, ev.errorf("the index must be a single integer")
		}
		i, err := strconv.Atoi(String(idx[0]))
		if err != nil {
			return nil, ev.errorf("the index %v is not an integer", idx[0])
		}
		if i < 0 || i >= len(in) {
			return nil, nil
		}
		return []any{in[i]}, nil
	case callNode:
		in := focus
		if n.target != nil {
			var err error
			if in, err = ev.eval(n.target, focus, this); err != nil {
				return nil, err
			}
		}
		return ev.call(n, in, this)
	case binNode:
		return ev.binary(n, focus, this)
	}
	return nil, ev.errorf("internal error: unknown node %T", n)
}

// member navigates to name in each item, with choice types: "value" finds
// valueQuantity and the like.
func member(in []any, name string) []any {
	var out []any
	for _, it := range in {
		m, ok := it.(map[string]any)
		if !ok {
			continue
		}
		v, ok := m[name]
		if !ok {
			for k, val := range m {
				if len(k) > len(name) && strings.HasPrefix(k, name) && unicode.IsUpper(rune(k[len(name)])) {
					v, ok = val, true
					break
				}
			}
		}
		if !ok {
			continue
		}
		if arr, isArr := v.([]any); isArr {
			out = append(out, arr...)
		} else if v != nil {
			out = append(out, v)
		}
	}
	return out
}

func (ev *evaluator) call(n callNode, in, this []any) ([]any, error) {
	switch n.name {
	case "where", "select", "exists", "all", "empty", "count", "first", "last", "tail", "not", "hasValue", "toString", "resolve":
	default:
		return nil, ev.errorf("the function %s() is outside the supported subset", n.name)
	}
	nargs := func(lo, hi int) error {
		if len(n.args) < lo || len(n.args) > hi {
			return ev.errorf("%s() takes %d to %d arguments, not %d", n.name, lo, hi, len(n.args))
		}
		return nil
	}
	switch n.name {
	case "where", "select", "exists", "all":
		lo := 1
		if n.name == "exists" {
			lo = 0
		}
		if err := nargs(lo, 1); err != nil {
			return nil, err
		}
		if len(n.args) == 0 {
			return []any{len(in) > 0}, nil
		}
		var out []any
		for _, it := range in {
			r, err := ev.eval(n.args[0], []any{it}, []any{it})
			if err != nil {
				return nil, err
			}
			if n.name == "select" {
				out = append(out, r...)
				continue
			}
			b, ok, err := Truth(r)
			if err != nil {
				return nil, err
			}
			switch n.name {
			case "where":
				if ok && b {
					out = append(out, it)
				}
			case "exists":
				if ok && b {
					return []any{true}, nil
				}
			case "all":
				if !ok || !b {
					return []any{false}, nil
				}
			}
		}
		switch n.name {
		case "exists":
			return []any{false}, nil
		case "all":
			return []any{true}, nil
		}
		return out, nil
	}
	if err := nargs(0, 0); err != nil {
		return nil, err
	}
	switch n.name {
	case "empty":
		return []any{len(in) == 0}, nil
	case "count":
		return []any{json.Number(strconv.Itoa(len(in)))}, nil
	case "first":
		if len(in) == 0 {
			return nil, nil
		}
		return in[:1], nil
	case "last":
		if len(in) == 0 {
			return nil, nil
		}
		return in[len(in)-1:], nil
	case "tail":
		if len(in) <= 1 {
			return nil, nil
		}
		return in[1:], nil
	case "not":
		b, ok, err := Truth(in)
		if err != nil || !ok {
			return nil, err
		}
		return []any{!b}, nil
	case "hasValue":
		if len(in) != 1 {
			return []any{false}, nil
		}
		switch in[0].(type) {
		case map[string]any, []any:
			return []any{false}, nil
		}
		return []any{true}, nil
	case "toString":
		if len(in) == 0 {
			return nil, nil
		}
		if len(in) > 1 {
			return nil, ev.errorf("toString() on %d items", len(in))
		}
		return []any{String(in[0])}, nil
	case "resolve":
		var out []any
		for _, it := range in {
			ref := ""
			switch x := it.(type) {
			case string:
				ref = x
			case map[string]any:
				ref, _ = x["reference"].(string)
			}
			if ref == "" {
				continue
			}
			if r, ok := ev.resolve(ref); ok {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return nil, ev.errorf("internal error: the function %s()", n.name)
}

// resolve finds the resource a reference names.
func (ev *evaluator) resolve(ref string) (any, bool) {
	if ev.env.Resolve != nil {
		return ev.env.Resolve(ref)
	}
	bundle, ok := ev.root.(map[string]any)
	if !ok || bundle["resourceType"] != "Bundle" {
		return nil, false
	}
	entries, _ := bundle["entry"].([]any)
	typeID := ref
	if parts := strings.Split(strings.Split(ref, "/_history/")[0], "/"); len(parts) >= 2 {
		typeID = parts[len(parts)-2] + "/" + parts[len(parts)-1]
	}
	for _, e := range entries {
		em, _ := e.(map[string]any)
		if em == nil {
			continue
		}
		res, _ := em["resource"].(map[string]any)
		if fu, _ := em["fullUrl"].(string); fu != "" && fu == ref && res != nil {
			return res, true
		}
	}
	for _, e := range entries {
		em, _ := e.(map[string]any)
		res, _ := em["resource"].(map[string]any)
		if res == nil {
			continue
		}
		if t, _ := res["resourceType"].(string); t != "" {
			if id, _ := res["id"].(string); id != "" && t+"/"+id == typeID {
				return res, true
			}
		}
	}
	return nil, false
}

func (ev *evaluator) binary(n binNode, focus, this []any) ([]any, error) {
	l, err := ev.eval(n.left, focus, this)
	if err != nil {
		return nil, err
	}
	r, err := ev.eval(n.right, focus, this)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "and", "or", "xor", "implies":
		lb, lok, err := Truth(l)
		if err != nil {
			return nil, err
		}
		rb, rok, err := Truth(r)
		if err != nil {
			return nil, err
		}
		return logic(n.op, lb, lok, rb, rok), nil
	case "|":
		out := append([]any{}, l...)
		for _, it := range r {
			dup := false
			for _, o := range out {
				if eq, ok := equal(o, it); ok && eq {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, it)
			}
		}
		return out, nil
	case "=", "!=":
		if len(l) == 0 || len(r) == 0 {
			return nil, nil
		}
		same := len(l) == len(r)
		for i := 0; same && i < len(l); i++ {
			eq, ok := equal(l[i], r[i])
			if !ok {
				return nil, nil
			}
			same = eq
		}
		if n.op == "!=" {
			same = !same
		}
		return []any{same}, nil
	}
	if len(l) == 0 || len(r) == 0 {
		return nil, nil
	}
	if len(l) > 1 || len(r) > 1 {
		return nil, ev.errorf("%s needs single items on both sides, not %d and %d", n.op, len(l), len(r))
	}
	a, b := l[0], r[0]
	if n.op == "+" {
		if as, ok := a.(string); ok {
			bs, ok := b.(string)
			if !ok {
				return nil, ev.errorf("+ of a string and a %T", b)
			}
			return []any{as + bs}, nil
		}
		x, okx := number(a)
		y, oky := number(b)
		if !okx || !oky {
			return nil, ev.errorf("+ needs two numbers or two strings")
		}
		s := new(big.Rat).Add(x, y)
		return []any{json.Number(ratString(s))}, nil
	}
	c, ok := compare(a, b)
	if !ok {
		return nil, ev.errorf("cannot compare %s with %s", String(a), String(b))
	}
	var res bool
	switch n.op {
	case "<":
		res = c < 0
	case ">":
		res = c > 0
	case "<=":
		res = c <= 0
	case ">=":
		res = c >= 0
	}
	return []any{res}, nil
}

// logic is FHIRPath's three-valued logic.
func logic(op string, a, aok, b, bok bool) []any {
	t := func(v bool) []any { return []any{v} }
	switch op {
	case "and":
		switch {
		case (aok && !a) || (bok && !b):
			return t(false)
		case aok && bok:
			return t(true)
		}
	case "or":
		switch {
		case (aok && a) || (bok && b):
			return t(true)
		case aok && bok:
			return t(false)
		}
	case "xor":
		if aok && bok {
			return t(a != b)
		}
	case "implies":
		switch {
		case aok && !a:
			return t(true)
		case bok && b:
			return t(true)
		case aok && bok:
			return t(false)
		}
	}
	return nil
}

func number(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case json.Number:
		return new(big.Rat).SetString(x.String())
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	case int:
		return big.NewRat(int64(x), 1), true
	}
	return nil, false
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	s := r.FloatString(12)
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}

// equal compares two items; ok is false when they cannot be compared.
func equal(a, b any) (eq, ok bool) {
	if x, okx := number(a); okx {
		y, oky := number(b)
		if !oky {
			return false, true
		}
		return x.Cmp(y) == 0, true
	}
	switch x := a.(type) {
	case string:
		y, isStr := b.(string)
		return isStr && x == y, true
	case bool:
		y, isBool := b.(bool)
		return isBool && x == y, true
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false, false
	}
	return string(ja) == string(jb), true
}

// compare orders two numbers or two strings (dates compare by their text).
func compare(a, b any) (int, bool) {
	if x, okx := number(a); okx {
		if y, oky := number(b); oky {
			return x.Cmp(y), true
		}
		return 0, false
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	}
	return 0, false
}
