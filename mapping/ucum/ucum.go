// Package ucum parses the UCUM unit codes that infusion doses, rates and
// observations use (mg, ug/kg/min, mL/h, mg/(kg.h), mm[Hg], meq, {score} …)
// and converts quantities between units of the same dimension. It covers the
// metric prefixes, mass, volume, time, amount of substance, equivalents and
// international units; a unit it does not know is an error, never a guess.
package ucum

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// dims counts the exponent of each base dimension.
type dims [7]int8

// The base dimensions.
const (
	dMass = iota
	dLength
	dTime
	dAmount     // mol
	dEquivalent // eq
	dIU         // international unit
	dPressure   // mm[Hg] is kept apart from mass·length⁻¹·time⁻²
)

// Unit is a parsed unit: a factor to the base units (g, m, s, mol, eq,
// [iU], mm[Hg]) and its dimension.
type Unit struct {
	Code   string
	factor float64
	dim    dims
}

// atom is a unit symbol with its factor and dimension; metric atoms take
// prefixes.
type atom struct {
	factor float64
	dim    dims
	metric bool
}

func one(d int, factor float64, metric bool) atom {
	var v dims
	v[d] = 1
	return atom{factor, v, metric}
}

var atoms = map[string]atom{
	"g":      one(dMass, 1, true),
	"m":      one(dLength, 1, true),
	"L":      {1e-3, dims{dLength: 3}, true},
	"l":      {1e-3, dims{dLength: 3}, true},
	"s":      one(dTime, 1, true),
	"min":    one(dTime, 60, false),
	"h":      one(dTime, 3600, false),
	"d":      one(dTime, 86400, false),
	"wk":     one(dTime, 7*86400, false),
	"mo":     one(dTime, 30.4375*86400, false),
	"a":      one(dTime, 365.25*86400, false),
	"mol":    one(dAmount, 1, true),
	"eq":     one(dEquivalent, 1, true),
	"[iU]":   one(dIU, 1, true),
	"[IU]":   one(dIU, 1, true),
	"m[Hg]":  one(dPressure, 1000, true),
	"%":      {0.01, dims{}, false},
	"[drp]":  {0.05e-6, dims{dLength: 3}, false},
	"[ppm]":  {1e-6, dims{}, false},
	"1":      {1, dims{}, false},
	"10*3":   {1e3, dims{}, false},
	"10*6":   {1e6, dims{}, false},
	"10*9":   {1e9, dims{}, false},
	"[pH]":   {1, dims{}, false},
	"[degF]": {}, // not linear: never converted
}

var prefixes = map[string]float64{
	"G": 1e9, "M": 1e6, "k": 1e3, "h": 1e2, "da": 10, "d": 0.1, "c": 1e-2,
	"m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12,
}

// aliases are unit texts that are not UCUM but say one UCUM unit plainly;
// they are read as that unit.
var aliases = map[string]string{
	"mcg": "ug", "µg": "ug", "ml": "mL", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
	"minute": "min", "minutes": "min", "mins": "min", "day": "d", "days": "d", "week": "wk", "weeks": "wk",
	"mEq": "meq", "mmHg": "mm[Hg]", "IU": "[iU]", "units": "[iU]", "bpm": "/min", "beats/min": "/min",
	"breaths/min": "/min",
}

// Parse reads a UCUM unit code. Annotations ({score}) count as 1; a few
// plain-text spellings (mcg, ml/hr, mmHg) are read as the UCUM unit they
// name.
func Parse(code string) (Unit, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return Unit{}, fmt.Errorf("no unit")
	}
	p := parser{src: normaliseAliases(code)}
	u, err := p.term()
	if err == nil && p.pos < len(p.src) {
		err = fmt.Errorf("unexpected %q", p.src[p.pos:])
	}
	if err != nil {
		return Unit{}, fmt.Errorf("%q is not a UCUM unit this server converts: %w", code, err)
	}
	u.Code = code
	return u, nil
}

// normaliseAliases rewrites the plain-text parts of a unit ("ml/hr").
func normaliseAliases(code string) string {
	if a, ok := aliases[code]; ok {
		return a
	}
	parts := strings.Split(code, "/")
	for i, p := range parts {
		if a, ok := aliases[p]; ok {
			parts[i] = a
		}
	}
	return strings.Join(parts, "/")
}

type parser struct {
	src string
	pos int
}

// term = ['/'] component (('.' | '/') component)*
func (p *parser) term() (Unit, error) {
	u := Unit{factor: 1}
	op := byte('.')
	if p.peek() == '/' {
		p.pos++
		op = '/'
	}
	for {
		c, err := p.component()
		if err != nil {
			return Unit{}, err
		}
		u = combine(u, c, op == '/')
		switch p.peek() {
		case '.', '/':
			op = p.src[p.pos]
			p.pos++
		default:
			return u, nil
		}
	}
}

func combine(a, b Unit, divide bool) Unit {
	if divide {
		a.factor /= b.factor
		for i := range a.dim {
			a.dim[i] -= b.dim[i]
		}
		return a
	}
	a.factor *= b.factor
	for i := range a.dim {
		a.dim[i] += b.dim[i]
	}
	return a
}

func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

// component = '(' term ')' | annotation | number | symbol [exponent] [annotation]
func (p *parser) component() (Unit, error) {
	switch c := p.peek(); {
	case c == '(':
		p.pos++
		u, err := p.term()
		if err != nil {
			return Unit{}, err
		}
		if p.peek() != ')' {
			return Unit{}, fmt.Errorf("missing )")
		}
		p.pos++
		return u, nil
	case c == '{':
		p.annotation()
		return Unit{factor: 1}, nil
	case c == 0:
		return Unit{}, fmt.Errorf("a unit is missing")
	}
	start := p.pos
	for p.pos < len(p.src) && !strings.ContainsRune("./(){", rune(p.src[p.pos])) {
		if p.src[p.pos] == '[' {
			end := strings.IndexByte(p.src[p.pos:], ']')
			if end < 0 {
				return Unit{}, fmt.Errorf("missing ]")
			}
			p.pos += end + 1
			continue
		}
		p.pos++
	}
	sym := p.src[start:p.pos]
	u, err := symbol(sym)
	if err != nil {
		return Unit{}, err
	}
	if p.peek() == '{' {
		p.annotation()
	}
	return u, nil
}

func (p *parser) annotation() {
	end := strings.IndexByte(p.src[p.pos:], '}')
	if end < 0 {
		p.pos = len(p.src)
		return
	}
	p.pos += end + 1
}

// symbol reads an atom with an optional prefix and exponent (cm2, s-1).
func symbol(sym string) (Unit, error) {
	if n, err := strconv.Atoi(sym); err == nil && n > 0 {
		return Unit{factor: float64(n)}, nil
	}
	if a, ok := atoms[sym]; ok && a.factor != 0 {
		return Unit{factor: a.factor, dim: a.dim}, nil
	}
	base, exp := sym, 1
	i := len(sym)
	for i > 0 && sym[i-1] >= '0' && sym[i-1] <= '9' {
		i--
	}
	if i > 0 && sym[i-1] == '-' {
		i--
	}
	if i > 0 && i < len(sym) {
		if n, err := strconv.Atoi(sym[i:]); err == nil && n != 0 {
			base, exp = sym[:i], n
		}
	}
	u, ok := lookup(base)
	if !ok {
		return Unit{}, fmt.Errorf("unknown unit %q", sym)
	}
	if exp != 1 {
		u.factor = math.Pow(u.factor, float64(exp))
		for i := range u.dim {
			u.dim[i] *= int8(exp)
		}
	}
	return u, nil
}

func lookup(sym string) (Unit, bool) {
	if a, ok := atoms[sym]; ok {
		return Unit{factor: a.factor, dim: a.dim}, a.factor != 0
	}
	for _, n := range []int{2, 1} {
		if len(sym) <= n {
			continue
		}
		f, ok := prefixes[sym[:n]]
		if !ok {
			continue
		}
		if a, ok := atoms[sym[n:]]; ok && a.metric {
			return Unit{factor: f * a.factor, dim: a.dim}, true
		}
	}
	return Unit{}, false
}

// Dimension describes the unit's dimension, e.g. "mass/time".
func (u Unit) Dimension() string {
	names := [...]string{"mass", "length", "time", "amount", "equivalents", "IU", "pressure"}
	var num, den []string
	for i, e := range u.dim {
		for ; e > 0; e-- {
			num = append(num, names[i])
		}
		for ; e < 0; e++ {
			den = append(den, names[i])
		}
	}
	s := strings.Join(num, "·")
	if s == "" {
		s = "1"
	}
	if len(den) > 0 {
		s += "/" + strings.Join(den, "·")
	}
	return s
}

// Comparable reports whether quantities in u and v convert into each other.
func (u Unit) Comparable(v Unit) bool { return u.dim == v.dim }

// Convert converts value from unit from to unit to.
func Convert(value float64, from, to string) (float64, error) {
	f, err := Parse(from)
	if err != nil {
		return 0, err
	}
	t, err := Parse(to)
	if err != nil {
		return 0, err
	}
	return f.ConvertTo(value, t)
}

// ConvertTo converts a value in u to unit t.
func (u Unit) ConvertTo(value float64, t Unit) (float64, error) {
	if u.dim != t.dim {
		return 0, fmt.Errorf("%s (%s) does not convert to %s (%s)", u.Code, u.Dimension(), t.Code, t.Dimension())
	}
	return value * u.factor / t.factor, nil
}

// Times returns the unit u·v; Per returns u/v. They build the units of
// derived quantities (a rate in mL/h times a concentration in mg/mL).
func (u Unit) Times(v Unit) Unit {
	w := combine(u, v, false)
	w.Code = "(" + u.Code + ").(" + v.Code + ")"
	return w
}

// Per returns u/v.
func (u Unit) Per(v Unit) Unit {
	w := combine(u, v, true)
	w.Code = "(" + u.Code + ")/(" + v.Code + ")"
	return w
}
