package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"strings"
	"time"

	models "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"infusion/fhir"
)

// decodeOptions let the faster JSON decoder fill the generated structs,
// whose decimals are encoding/json Numbers (kept as their text).
var decodeOptions = jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, n *json.Number) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != '0' {
		return fmt.Errorf("expected a number, got %v", tok.Kind())
	}
	*n = json.Number(tok.String())
	return nil
}))

// Mapper maps FHIR resources to the infusion model.
type Mapper struct {
	classes *Classifier
}

// NewMapper returns a Mapper that classifies drugs with c.
func NewMapper(c *Classifier) *Mapper { return &Mapper{classes: c} }

// Map maps a resource (its JSON) with the given id to model rows. Types
// other than the three infusion types map to no rows.
func (m *Mapper) Map(typeName, id string, body []byte) (Rows, error) {
	switch typeName {
	case "MedicationRequest":
		var r models.MedicationRequest
		contained, err := decode(body, &r)
		if err != nil {
			return Rows{}, fmt.Errorf("mapping MedicationRequest/%s: %w", id, err)
		}
		o := m.order(r, contained)
		o.ID = id
		return Rows{Order: o}, nil
	case "MedicationAdministration":
		var r models.MedicationAdministration
		contained, err := decode(body, &r)
		if err != nil {
			return Rows{}, fmt.Errorf("mapping MedicationAdministration/%s: %w", id, err)
		}
		a := m.administration(r, contained)
		a.ID = id
		return Rows{Administration: a}, nil
	case "Observation":
		var r models.Observation
		if _, err := decode(body, &r); err != nil {
			return Rows{}, fmt.Errorf("mapping Observation/%s: %w", id, err)
		}
		as := assessments(r)
		for i := range as {
			as[i].Observation = id
		}
		return Rows{Assessments: as}, nil
	case "DetectedIssue":
		var r models.DetectedIssue
		if _, err := decode(body, &r); err != nil {
			return Rows{}, fmt.Errorf("mapping DetectedIssue/%s: %w", id, err)
		}
		f := finding(r)
		f.ID = id
		return Rows{Finding: f}, nil
	}
	return Rows{}, nil
}

// decode fills a generated struct from a stored resource and returns the
// resource's contained resources, which the structs leave out.
func decode(body []byte, v any) ([]json.RawMessage, error) {
	if err := jsonv2.Unmarshal(body, v, decodeOptions); err != nil {
		return nil, err
	}
	if !bytes.Contains(body, []byte(`"contained"`)) {
		return nil, nil
	}
	var c struct {
		Contained []json.RawMessage `json:"contained"`
	}
	err := jsonv2.Unmarshal(body, &c, decodeOptions)
	return c.Contained, err
}

func (m *Mapper) order(r models.MedicationRequest, contained []json.RawMessage) *Order {
	o := &Order{
		Status:     r.Status,
		Intent:     r.Intent,
		Patient:    patientOf(&r.Subject),
		AuthoredOn: parseTime(r.AuthoredOn),
		Setting:    settingOf(r.Category),
	}
	if r.Priority != nil {
		o.Priority = r.Priority.Code()
	}
	o.Drug, o.Ingredients = m.drug(r.MedicationCodeableConcept, r.MedicationReference, contained)
	for _, rc := range r.ReasonCode {
		o.Indications = append(o.Indications, codings(&rc)...)
	}
	for _, ref := range r.ReasonReference {
		if rel := relative(&ref); rel != "" {
			o.ReasonRefs = append(o.ReasonRefs, rel)
		}
	}
	if len(r.DosageInstruction) > 0 {
		d := r.DosageInstruction[0]
		o.Route = first(d.Route)
		o.AsNeeded = d.AsNeededBoolean != nil && *d.AsNeededBoolean || d.AsNeededCodeableConcept != nil
		if len(d.DoseAndRate) > 0 {
			dr := d.DoseAndRate[0]
			o.Dose = quantity(dr.DoseQuantity)
			o.DoseRange = rangeOf(dr.DoseRange)
			o.Rate = quantity(dr.RateQuantity)
			if o.Rate == nil {
				o.Rate = ratioRate(dr.RateRatio)
				o.RateFromRatio = o.Rate != nil
			}
			o.RateRange = rangeOf(dr.RateRange)
		}
		o.WeightBased = perKg(o.Dose) || perKg(o.Rate) || o.DoseRange != nil && (perKg(o.DoseRange.Low) || perKg(o.DoseRange.High)) ||
			o.RateRange != nil && (perKg(o.RateRange.Low) || perKg(o.RateRange.High))
		o.MaxDosePerAdministration = quantity(d.MaxDosePerAdministration)
		o.MaxDosePerLifetime = quantity(d.MaxDosePerLifetime)
		if d.Timing != nil && d.Timing.Repeat != nil {
			rep := d.Timing.Repeat
			if rep.Duration != nil && rep.DurationUnit != nil {
				o.DurationMinutes = number(rep.Duration) * minutesPer(*rep.DurationUnit)
			}
			if rep.Frequency != nil {
				o.Frequency = *rep.Frequency
			}
			if rep.Period != nil && rep.PeriodUnit != nil {
				o.Period, o.PeriodUnit = number(rep.Period), *rep.PeriodUnit
				freq := o.Frequency
				if freq == 0 {
					freq = 1
				}
				o.IntervalHours = o.Period * minutesPer(o.PeriodUnit) / 60 / float64(freq)
			}
			if rep.Count != nil {
				o.Sessions = *rep.Count
			}
			if rep.BoundsPeriod != nil {
				o.BoundsStart, o.BoundsEnd = period(rep.BoundsPeriod)
			}
		}
	}
	if dr := r.DispenseRequest; dr != nil {
		if dr.ValidityPeriod != nil {
			o.ValidityStart, o.ValidityEnd = period(dr.ValidityPeriod)
		}
		if d := dr.ExpectedSupplyDuration; d != nil && d.Value != nil && d.Code != nil {
			o.ExpectedSupplyDays = number(d.Value) * minutesPer(*d.Code) / (24 * 60)
		}
		o.DispenseQuantity = quantity(dr.Quantity)
	}
	return o
}

func (m *Mapper) administration(r models.MedicationAdministration, contained []json.RawMessage) *Administration {
	a := &Administration{
		Status:  r.Status,
		Patient: patientOf(&r.Subject),
		Setting: settingOf(optional(r.Category)),
	}
	if r.Request != nil {
		if ref := fhir.ParseReference(deref(r.Request.Reference)); ref.Kind == fhir.RefLiteral && ref.Type == "MedicationRequest" {
			a.Order = ref.ID
		}
	}
	for _, sr := range r.StatusReason {
		a.StatusReason = append(a.StatusReason, codings(&sr)...)
	}
	if r.EffectiveDateTime != "" {
		a.Start = parseTime(&r.EffectiveDateTime)
		a.End = a.Start
	} else {
		a.Start, a.End = period(&r.EffectivePeriod)
	}
	a.Drug, _ = m.drug(r.MedicationCodeableConcept, r.MedicationReference, contained)
	if d := r.Dosage; d != nil {
		a.Route = first(d.Route)
		a.Dose = quantity(d.Dose)
		a.Rate = quantity(d.RateQuantity)
		if a.Rate == nil {
			a.Rate = ratioRate(d.RateRatio)
			a.RateFromRatio = a.Rate != nil
		}
	}
	return a
}

func assessments(r models.Observation) []Assessment {
	base := Assessment{
		Status:   r.Status.Code(),
		Patient:  patientOf(r.Subject),
		Category: categoryCode(r.Category),
	}
	switch {
	case r.EffectiveDateTime != nil:
		base.Effective = parseTime(r.EffectiveDateTime)
		base.EffectiveEnd = base.Effective
	case r.EffectiveInstant != nil:
		base.Effective = parseTime(r.EffectiveInstant)
		base.EffectiveEnd = base.Effective
	case r.EffectivePeriod != nil:
		base.Effective, base.EffectiveEnd = period(r.EffectivePeriod)
	}
	for _, p := range r.PartOf {
		if ref := fhir.ParseReference(deref(p.Reference)); ref.Kind == fhir.RefLiteral && ref.Type == "MedicationAdministration" {
			base.Administration = ref.ID
			break
		}
	}
	own := codings(&r.Code)
	main := base
	main.Code = preferred(own, SystemLOINC)
	main.Kind = kindOf(own, base.Category)
	setValue(&main, observationValue{r.ValueQuantity, r.ValueCodeableConcept, r.ValueString, r.ValueBoolean, r.ValueInteger})
	out := []Assessment{main}
	for i, c := range r.Component {
		cc := codings(&c.Code)
		a := base
		a.Index = i + 1
		a.Code = preferred(cc, SystemLOINC)
		a.Kind = kindOf(cc, base.Category)
		setValue(&a, observationValue{c.ValueQuantity, c.ValueCodeableConcept, c.ValueString, c.ValueBoolean, c.ValueInteger})
		out = append(out, a)
	}
	return out
}

// observationValue holds the value[x] variants the model keeps.
type observationValue struct {
	quantity *models.Quantity
	concept  *models.CodeableConcept
	text     *string
	boolean  *bool
	integer  *int
}

func setValue(a *Assessment, v observationValue) {
	switch {
	case v.quantity != nil:
		a.Value = quantity(v.quantity)
	case v.integer != nil:
		a.Value = &Quantity{Value: float64(*v.integer)}
	case v.concept != nil:
		a.ValueCode = first(v.concept)
		a.ValueText = deref(v.concept.Text)
	case v.boolean != nil:
		b := *v.boolean
		a.ValueBool = &b
	case v.text != nil:
		a.ValueText = *v.text
	}
}

// drug reads medication[x]: the codeable concept, or a contained Medication
// ("#id") with its form and ingredients. A reference to a Medication stored
// elsewhere keeps only its display. (The generated structs hold both
// variants as values; the empty one is zero.)
func (m *Mapper) drug(cc models.CodeableConcept, ref models.Reference, contained []json.RawMessage) (Drug, []Ingredient) {
	if len(cc.Coding) > 0 || cc.Text != nil {
		all := codings(&cc)
		return Drug{Coding: withText(preferred(all, SystemRxNorm), cc.Text), Class: m.classes.Classify(all, deref(cc.Text))}, nil
	}
	r := fhir.ParseReference(deref(ref.Reference))
	med, ok := containedMedication(contained, r)
	if !ok {
		return Drug{Coding: Coding{Display: deref(ref.Display)}, Class: m.classes.Classify(nil, deref(ref.Display))}, nil
	}
	var all []Coding
	text := ""
	if med.Code != nil {
		all = codings(med.Code)
		text = deref(med.Code.Text)
	}
	d := Drug{Coding: withText(preferred(all, SystemRxNorm), &text), Form: first(med.Form)}
	var ingredients []Ingredient
	var ingredientCodings []Coding
	for _, in := range med.Ingredient {
		ing := Ingredient{Coding: withText(preferred(codings(&in.ItemCodeableConcept), SystemRxNorm), in.ItemCodeableConcept.Text)}
		if s := in.Strength; s != nil && s.Numerator != nil && s.Denominator != nil {
			ing.Strength = &Ratio{Numerator: *quantity(s.Numerator), Denominator: *quantity(s.Denominator)}
			if d.Strength == nil {
				d.Strength = ing.Strength
			}
		}
		ingredients = append(ingredients, ing)
		ingredientCodings = append(ingredientCodings, codings(&in.ItemCodeableConcept)...)
		text += " " + deref(in.ItemCodeableConcept.Text)
	}
	d.Class = m.classes.Classify(append(all, ingredientCodings...), text)
	return d, ingredients
}

func containedMedication(contained []json.RawMessage, ref fhir.Reference) (models.Medication, bool) {
	if ref.Kind != fhir.RefContained || ref.ID == "" {
		return models.Medication{}, false
	}
	for _, raw := range contained {
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if json.Unmarshal(raw, &head) != nil || head.ResourceType != "Medication" || head.ID != ref.ID {
			continue
		}
		var med models.Medication
		if json.Unmarshal(raw, &med) == nil {
			return med, true
		}
	}
	return models.Medication{}, false
}

// settingOf reads the setting from category codes: community means at home,
// inpatient and outpatient mean in clinic.
func settingOf(categories []models.CodeableConcept) Setting {
	for _, c := range categories {
		for _, cd := range c.Coding {
			switch deref(cd.Code) {
			case "community":
				return SettingHome
			case "inpatient", "outpatient":
				return SettingClinic
			}
		}
	}
	return ""
}

func categoryCode(categories []models.CodeableConcept) string {
	for _, c := range categories {
		for _, cd := range c.Coding {
			if cd.Code != nil {
				return *cd.Code
			}
		}
	}
	return ""
}

func patientOf(subject *models.Reference) string {
	if subject == nil {
		return ""
	}
	r := fhir.ParseReference(deref(subject.Reference))
	if r.Kind == fhir.RefLiteral && r.Type == "Patient" {
		return r.Relative()
	}
	return ""
}

func relative(ref *models.Reference) string {
	return fhir.ParseReference(deref(ref.Reference)).Relative()
}

func codings(cc *models.CodeableConcept) []Coding {
	if cc == nil {
		return nil
	}
	out := make([]Coding, 0, len(cc.Coding))
	for _, c := range cc.Coding {
		out = append(out, Coding{System: deref(c.System), Code: deref(c.Code), Display: deref(c.Display)})
	}
	return out
}

// preferred returns the first coding of system, else the first coding.
func preferred(cs []Coding, system string) Coding {
	for _, c := range cs {
		if c.System == system {
			return c
		}
	}
	if len(cs) > 0 {
		return cs[0]
	}
	return Coding{}
}

func first(cc *models.CodeableConcept) Coding {
	return preferred(codings(cc), "")
}

func withText(c Coding, text *string) Coding {
	if c.Display == "" {
		c.Display = deref(text)
	}
	return c
}

func optional(cc *models.CodeableConcept) []models.CodeableConcept {
	if cc == nil {
		return nil
	}
	return []models.CodeableConcept{*cc}
}

// quantity reads a Quantity; the unit is its UCUM code when it has one.
func quantity(q *models.Quantity) *Quantity {
	if q == nil || q.Value == nil {
		return nil
	}
	unit := deref(q.Unit)
	if q.Code != nil && (q.System == nil || *q.System == SystemUCUM) {
		unit = *q.Code
	}
	return &Quantity{Value: number(q.Value), Unit: unit}
}

func rangeOf(r *models.Range) *Range {
	if r == nil {
		return nil
	}
	return &Range{Low: quantity(r.Low), High: quantity(r.High)}
}

// ratioRate reads a rate given as a ratio as one quantity: 100 mL per 1 h is
// 100 mL/h; 1.8 mg/kg per 20 min is 0.09 mg/kg/min.
func ratioRate(r *models.Ratio) *Quantity {
	if r == nil {
		return nil
	}
	num, den := quantity(r.Numerator), quantity(r.Denominator)
	if num == nil || den == nil || den.Value == 0 {
		return nil
	}
	return &Quantity{Value: num.Value / den.Value, Unit: num.Unit + "/" + den.Unit}
}

func perKg(q *Quantity) bool {
	return q != nil && strings.Contains(q.Unit, "/kg")
}

func number(n *json.Number) float64 {
	if n == nil {
		return 0
	}
	f, _ := n.Float64()
	return f
}

func period(p *models.Period) (time.Time, time.Time) {
	start := parseTime(p.Start)
	end := time.Time{}
	if p.End != nil {
		if dt, err := fhir.ParseDateTime(*p.End); err == nil {
			end = dt.Time
			if dt.Precision < fhir.PrecisionSecond {
				end = dt.End().Add(-time.Millisecond) // the last instant of a date
			}
		}
	}
	return start, end
}

func parseTime(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	dt, err := fhir.ParseDateTime(*s)
	if err != nil {
		return time.Time{}
	}
	return dt.Time
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
