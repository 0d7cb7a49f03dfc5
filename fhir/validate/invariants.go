package validate

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"infusion/fhir"
)

// invariant is a base R4 constraint that the schema cannot express. check
// returns "" when the element satisfies it, else what is wrong. at, when
// set, names the child element the issue points at (the one present that
// should not be, or that lacks its companion); else the issue points at the
// element the invariant is declared on.
type invariant struct {
	key   string
	check func(obj map[string]any) string
	at    func(obj map[string]any) string
}

// invariants are the base constraints of the R4 types, by the type (or
// backbone path) they are declared on. ele-1, ref-1, dom-2 … dom-5 are
// checked by the walker itself.
var invariants = map[string][]invariant{
	"Extension": {{"ext-1", func(o map[string]any) string {
		hasValue := false
		for k := range o {
			if strings.HasPrefix(k, "value") {
				hasValue = true
			}
		}
		if _, hasExt := o["extension"]; hasExt == hasValue {
			return "an extension must have either extensions or a value[x], not both"
		}
		return ""
	}, nil}},
	"Quantity": {qty3},
	"SimpleQuantity": {qty3, {"sqty-1", func(o map[string]any) string {
		if _, ok := o["comparator"]; ok {
			return "a SimpleQuantity has no comparator"
		}
		return ""
	}, nil}},
	"Duration": {qty3, {"drt-1", func(o map[string]any) string {
		if _, ok := o["code"]; !ok {
			return ""
		}
		if o["system"] != ucum || o["value"] == nil {
			return "a duration with a code needs a value and the UCUM system"
		}
		return ""
	}, nil}},
	"Age": {qty3, {"age-1", func(o map[string]any) string {
		if msg := ucumQuantity(o); msg != "" {
			return msg
		}
		if v, ok := number(o, "value"); ok && v <= 0 {
			return "an age must be above zero"
		}
		return ""
	}, nil}},
	"Distance": {qty3, {"dis-1", ucumQuantity, nil}},
	"Count": {qty3, {"cnt-3", func(o map[string]any) string {
		if msg := ucumQuantity(o); msg != "" {
			return msg
		}
		if c, ok := o["code"]; ok && c != "1" {
			return "a count's code must be 1"
		}
		if v, ok := o["value"].(json.Number); ok && strings.ContainsAny(string(v), ".eE") {
			return "a count must be a whole number"
		}
		return ""
	}, nil}},
	"Range": {{"rng-2", func(o map[string]any) string {
		low, _ := o["low"].(map[string]any)
		high, _ := o["high"].(map[string]any)
		lv, lok := number(low, "value")
		hv, hok := number(high, "value")
		if lok && hok && low["code"] == high["code"] && low["unit"] == high["unit"] && lv > hv {
			return "the low value must not be above the high value"
		}
		return ""
	}, nil}},
	"Ratio": {{"rat-1", func(o map[string]any) string {
		_, num := o["numerator"]
		_, den := o["denominator"]
		_, ext := o["extension"]
		if num != den {
			return "a ratio needs both a numerator and a denominator, or neither"
		}
		if !num && !ext {
			return "a ratio without numerator and denominator needs an extension"
		}
		return ""
	}, nil}},
	"Period": {{"per-1", func(o map[string]any) string {
		start, sok := o["start"].(string)
		end, eok := o["end"].(string)
		if !sok || !eok {
			return ""
		}
		s, err1 := fhir.ParseDateTime(start)
		e, err2 := fhir.ParseDateTime(end)
		if err1 == nil && err2 == nil && !s.Time.Before(e.End()) {
			return "the start must not be after the end"
		}
		return ""
	}, nil}},
	"Timing.repeat": {
		{"tim-1", needs("duration", "durationUnit", "a duration needs a durationUnit"), child("duration")},
		{"tim-2", needs("period", "periodUnit", "a period needs a periodUnit"), child("period")},
		{"tim-4", nonNegative("duration"), child("duration")},
		{"tim-5", nonNegative("period"), child("period")},
		{"tim-6", needs("periodMax", "period", "periodMax needs a period"), child("periodMax")},
		{"tim-7", needs("durationMax", "duration", "durationMax needs a duration"), child("durationMax")},
		{"tim-8", needs("countMax", "count", "countMax needs a count"), child("countMax")},
		{"tim-9", func(o map[string]any) string {
			if _, ok := o["offset"]; !ok {
				return ""
			}
			when := asArray(o["when"])
			if len(when) == 0 {
				return "an offset needs a when"
			}
			for _, w := range when {
				switch w {
				case "C", "CM", "CD", "CV":
					return "an offset cannot go with the meal codes C, CM, CD or CV"
				}
			}
			return ""
		}, child("offset")},
		{"tim-10", func(o map[string]any) string {
			_, tod := o["timeOfDay"]
			_, when := o["when"]
			if tod && when {
				return "timeOfDay and when cannot both be given"
			}
			return ""
		}, nil},
	},
	"Attachment": {{"att-1", needs("data", "contentType", "an attachment with data needs a contentType"), child("data")}},
	"Observation": {
		obs6,
		{"obs-7", func(o map[string]any) string {
			if !hasValueX(o) {
				return ""
			}
			own := codings(o["code"])
			for _, c := range asArray(o["component"]) {
				cm, _ := c.(map[string]any)
				for k := range codings(cm["code"]) {
					if own[k] {
						return "when a component has the same code as the observation, the observation must not have a value[x]"
					}
				}
			}
			return ""
		}, valueElement},
	},
	"Observation.referenceRange": {{"obs-3", func(o map[string]any) string {
		_, low := o["low"]
		_, high := o["high"]
		_, text := o["text"]
		if !low && !high && !text {
			return "a reference range needs a low, a high or a text"
		}
		return ""
	}, nil}},
	"MedicationAdministration.dosage": {{"mad-1", func(o map[string]any) string {
		_, dose := o["dose"]
		_, rq := o["rateQuantity"]
		_, rr := o["rateRatio"]
		if !dose && !rq && !rr {
			return "a dosage needs a dose or a rate[x]"
		}
		return ""
	}, nil}},
}

const ucum = "http://unitsofmeasure.org"

// obs6 keeps dataAbsentReason and a value apart.
var obs6 = invariant{"obs-6", func(o map[string]any) string {
	if _, ok := o["dataAbsentReason"]; ok && hasValueX(o) {
		return "dataAbsentReason is only allowed when there is no value[x]"
	}
	return ""
}, child("dataAbsentReason")}

var qty3 = invariant{"qty-3", func(o map[string]any) string {
	_, code := o["code"]
	_, system := o["system"]
	if code && !system {
		return "a quantity with a code needs a system"
	}
	return ""
}, nil}

// ucumQuantity is the shared part of age-1, dis-1 and cnt-3: a value needs a
// code, and the system, if any, is UCUM.
func ucumQuantity(o map[string]any) string {
	_, code := o["code"]
	_, value := o["value"]
	if value && !code {
		return "a value needs a UCUM code"
	}
	if s, ok := o["system"]; ok && s != ucum {
		return "the system must be UCUM"
	}
	return ""
}

// child points an invariant's issue at the named child element.
func child(name string) func(map[string]any) string {
	return func(map[string]any) string { return name }
}

// valueElement points an invariant's issue at the value[x] present.
func valueElement(o map[string]any) string {
	for k := range o {
		if strings.HasPrefix(k, "value") {
			return k
		}
	}
	return ""
}

func needs(present, required, msg string) func(map[string]any) string {
	return func(o map[string]any) string {
		if has(o, present) && !has(o, required) {
			return msg
		}
		return ""
	}
}

func nonNegative(name string) func(map[string]any) string {
	return func(o map[string]any) string {
		if v, ok := number(o, name); ok && v < 0 {
			return name + " must not be negative"
		}
		return ""
	}
}

func number(o map[string]any, name string) (float64, bool) {
	n, ok := o[name].(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func hasValueX(o map[string]any) bool {
	for k := range o {
		if strings.HasPrefix(k, "value") || strings.HasPrefix(k, "_value") {
			return true
		}
	}
	return false
}

// codings returns the "system|code" keys of a CodeableConcept.
func codings(v any) map[string]bool {
	cc, _ := v.(map[string]any)
	out := map[string]bool{}
	for _, c := range asArray(cc["coding"]) {
		cm, _ := c.(map[string]any)
		system, _ := cm["system"].(string)
		code, _ := cm["code"].(string)
		if code != "" {
			out[system+"|"+code] = true
		}
	}
	return out
}

// forbiddenXHTML are the elements txt-1 does not allow in a narrative.
var forbiddenXHTML = map[string]bool{
	"script": true, "object": true, "applet": true, "iframe": true, "embed": true, "form": true,
	"input": true, "button": true, "select": true, "textarea": true, "base": true, "link": true,
	"meta": true, "style": true, "head": true, "body": true, "html": true, "frame": true, "frameset": true,
}

// checkXHTML applies txt-1 and txt-2 to Narrative.div: well-formed XHTML, a
// div in the XHTML namespace at the root, no active content, and some text
// or an image.
func checkXHTML(s string) string {
	dec := xml.NewDecoder(strings.NewReader(s))
	dec.Strict = true
	dec.Entity = xml.HTMLEntity
	depth := 0
	content := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "txt-1: the narrative is not well-formed XHTML: " + err.Error()
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && (t.Name.Local != "div" || t.Name.Space != "http://www.w3.org/1999/xhtml") {
				return `txt-1: the narrative must be a <div xmlns="http://www.w3.org/1999/xhtml">`
			}
			if forbiddenXHTML[strings.ToLower(t.Name.Local)] {
				return "txt-1: the narrative must not contain <" + t.Name.Local + ">"
			}
			for _, a := range t.Attr {
				if strings.HasPrefix(strings.ToLower(a.Name.Local), "on") {
					return "txt-1: the narrative must not have event attributes such as " + a.Name.Local
				}
			}
			if t.Name.Local == "img" {
				content = true
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && strings.TrimSpace(string(t)) != "" {
				return "txt-1: the narrative must be a single <div>"
			}
			if strings.TrimSpace(string(t)) != "" {
				content = true
			}
		}
	}
	if !content {
		return "txt-2: the narrative must have some non-whitespace content"
	}
	return ""
}
