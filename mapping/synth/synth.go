// Package synth makes realistic, deterministic infusion-therapy data:
// patients with chronic pain conditions, infusion orders per protocol, the
// sessions given (some stopped early for nausea, some at home), pain scores
// before and after each session, vital signs, side effects (nausea,
// dizziness, headache, dissociation), body weights and opioid orders (oral
// oxycodone, morphine, tramadol and methadone, transdermal fentanyl),
// tapered after the course for the patients who respond. The same seed and
// configuration always yield the same resources, byte for byte.
//
// Only MedicationRequest, MedicationAdministration and Observation resources
// are made: patients are referred to as "Patient/pat-000042" without a
// Patient resource, and each order carries its condition in reasonCode.
package synth

import (
	"encoding/json"
	"fmt"
	"infusion/mapping"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config says what to generate.
type Config struct {
	// Patients is the number of patients; zero or less takes 100.
	Patients int
	// Seed chooses the data: the same seed gives the same resources.
	Seed uint64
	// Start is the earliest day a course starts; each starts on a day
	// within a year after it. The zero time takes 2025-01-01.
	Start time.Time
	// Rates are the chances the generator draws with; nil takes
	// DefaultRates.
	Rates *Rates
}

// Rates are the chances the generator draws with, each between 0 and 1.
type Rates struct {
	// Response is the share of patients whose pain falls by half or more
	// over a course, by drug class (see Classes). A class missing from the
	// map takes its default.
	Response map[string]float64
	// Nausea is the chance a session brings nausea, and Stop the chance
	// that nausea stops the session early (status stopped).
	Nausea, Stop float64
	// Dizziness and Headache are the chances a session brings them.
	Dizziness, Headache float64
	// Dissociation is the chance a ketamine session brings dissociation
	// (the other drugs do not cause it).
	Dissociation float64
	// Home is the share of courses given at home (setting community) among
	// those of drugs that may be given at home (lidocaine, magnesium); the
	// others are given in the clinic (outpatient). Every session of a
	// course is given where the course is, so Home is the share of their
	// sessions at home too.
	Home float64
}

// DefaultRates returns the rates the generator uses when Config.Rates is
// nil.
func DefaultRates() Rates {
	return Rates{
		Response: map[string]float64{
			"ketamine": 0.55, "lidocaine": 0.45, "vitamin-nutrient": 0.25, "gabapentinoid": 0.30,
		},
		Nausea:       0.15,
		Stop:         0.4,
		Dizziness:    0.08,
		Headache:     0.06,
		Dissociation: 0.20,
		Home:         0.3,
	}
}

// DefaultConfig returns the defaults: 100 patients, seed 1, courses from
// 2025-01-01, DefaultRates.
func DefaultConfig() Config {
	r := DefaultRates()
	return Config{
		Patients: 100,
		Seed:     1,
		Start:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Rates:    &r,
	}
}

// Classes returns the drug classes of the infusions the generator orders:
// the keys of Rates.Response.
func Classes() []string {
	out := make([]string, len(drugs))
	for i, d := range drugs {
		out[i] = d.class
	}
	return out
}

// RateError is a rate outside 0..1 or for an unknown drug class. Name is
// the Rates field ("Nausea", "Response"), Class the drug class of a
// response rate.
type RateError struct {
	Name, Class string
	Value       float64
}

// Error says which rate is wrong and why.
func (e *RateError) Error() string {
	if e.Class != "" && !knownClass(e.Class) {
		return fmt.Sprintf("unknown drug class %q (known: %v)", e.Class, Classes())
	}
	if e.Class != "" {
		return fmt.Sprintf("response rate of %s: %v is not between 0 and 1", e.Class, e.Value)
	}
	return fmt.Sprintf("%s rate: %v is not between 0 and 1", e.Name, e.Value)
}

// Validate reports the first rate outside 0..1, or a response rate of a
// class the generator does not know, as a *RateError.
func (r Rates) Validate() error {
	for _, c := range slices.Sorted(maps.Keys(r.Response)) {
		v := r.Response[c]
		if !knownClass(c) || !isRate(v) {
			return &RateError{Name: "Response", Class: c, Value: v}
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"Nausea", r.Nausea}, {"Stop", r.Stop}, {"Dizziness", r.Dizziness},
		{"Headache", r.Headache}, {"Dissociation", r.Dissociation}, {"Home", r.Home},
	} {
		if !isRate(f.v) {
			return &RateError{Name: f.name, Value: f.v}
		}
	}
	return nil
}

// ParseResponse reads response rates written as "class=rate,class=rate",
// e.g. "ketamine=0.6,lidocaine=0.4". It checks the classes and that each
// rate is between 0 and 1.
func ParseResponse(s string) (map[string]float64, error) {
	out := map[string]float64{}
	if s == "" {
		return nil, fmt.Errorf("no rates: want class=rate pairs such as ketamine=0.55")
	}
	for _, part := range strings.Split(s, ",") {
		class, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || class == "" {
			return nil, fmt.Errorf("%q is not class=rate", part)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("rate of %s: %q is not a number", class, value)
		}
		if !knownClass(class) || !isRate(v) {
			return nil, &RateError{Name: "Response", Class: class, Value: v}
		}
		out[class] = v
	}
	return out, nil
}

// Validate checks the rates (when set).
func (c Config) Validate() error {
	if c.Rates == nil {
		return nil
	}
	return c.Rates.Validate()
}

func knownClass(c string) bool {
	for _, d := range drugs {
		if d.class == c {
			return true
		}
	}
	return false
}

// isRate reports whether v is a chance: between 0 and 1 (not NaN).
func isRate(v float64) bool { return v >= 0 && v <= 1 }

// Resource is one generated resource: its type, id and compact JSON.
type Resource struct {
	Type, ID string
	JSON     []byte
}

// drug is an infusion protocol the generator orders.
type drug struct {
	class, code, display string
	rate                 float64 // per hour
	rateUnit             string
	hours                float64
	sessions             int
	intervalDays         int
	home                 bool // may be given at home
	share                float64
}

var drugs = []drug{
	{"ketamine", "6130", "ketamine", 0.35, "mg/kg/h", 4, 5, 1, false, 0.40},
	{"lidocaine", "6387", "lidocaine", 1.5, "mg/kg/h", 1, 4, 7, true, 0.30},
	{"vitamin-nutrient", "6585", "magnesium sulfate", 100, "mL/h", 1, 6, 7, true, 0.25},
	{"gabapentinoid", "25480", "gabapentin", 300, "mg/h", 1, 3, 7, false, 0.05},
}

type condition struct{ code, display string }

var conditions = []condition{
	{"128200000", "Complex regional pain syndrome"},
	{"203082005", "Fibromyalgia"},
	{"247398009", "Neuropathic pain"},
}

// opioid is a regimen a patient takes before and after the course: oral
// doses in mg several times a day, or a transdermal patch in ug/h changed
// every few days.
type opioid struct {
	code, display string
	patch         bool
	doses         []float64 // mg per dose, or ug/h for a patch; one is drawn
	perDay        int       // oral doses a day
	share         float64
}

var opioids = []opioid{
	{"7804", "oxycodone", false, []float64{5}, 4, 0.30},
	{"7052", "morphine", false, []float64{15}, 4, 0.20},
	{"10689", "tramadol", false, []float64{50}, 4, 0.20},
	{"6813", "methadone", false, []float64{5, 10}, 3, 0.15},
	{"4337", "fentanyl", true, []float64{25, 25, 50}, 0, 0.15},
}

// patchDays is how long a fentanyl patch stays on.
const patchDays = 3

// Side effects: SNOMED CT findings the model's mapping classifies as side
// effects; dissociation has no verified SNOMED code (clinical reference
// 3.2), so it is a local code with text.
var (
	nausea       = sideEffectCode{"http://snomed.info/sct", "422587007", "Nausea"}
	dizziness    = sideEffectCode{"http://snomed.info/sct", "404640003", "Dizziness"}
	headache     = sideEffectCode{"http://snomed.info/sct", "25064002", "Headache"}
	dissociation = sideEffectCode{mapping.SystemSideEffect, "dissociation", "Dissociation"}
)

type sideEffectCode struct{ system, code, display string }

// Generator makes the resources of each patient. It holds no state that
// changes: Patient may be called from several goroutines.
type Generator struct {
	cfg   Config
	rates Rates
}

// New returns a Generator for cfg, with the defaults for what cfg leaves
// out. It does not check the rates (see Config.Validate): a rate below 0
// acts as 0 and one above 1 as 1.
func New(cfg Config) *Generator {
	def := DefaultConfig()
	if cfg.Patients <= 0 {
		cfg.Patients = def.Patients
	}
	if cfg.Start.IsZero() {
		cfg.Start = def.Start
	}
	rates := *def.Rates
	if cfg.Rates != nil {
		rates = *cfg.Rates
		rates.Response = map[string]float64{}
		for c, v := range def.Rates.Response {
			rates.Response[c] = v
		}
		for c, v := range cfg.Rates.Response {
			rates.Response[c] = v
		}
	}
	cfg.Rates = nil
	return &Generator{cfg: cfg, rates: rates}
}

// Patients returns the number of patients the generator was configured for.
func (g *Generator) Patients() int { return g.cfg.Patients }

// PatientID returns the id of patient i.
func PatientID(i int) string { return fmt.Sprintf("pat-%06d", i) }

// OrderIdentifier returns the identifier value of patient i's infusion order.
func OrderIdentifier(i int) string { return fmt.Sprintf("INF-%06d", i) }

// OrderSystem is the identifier system of the generated infusion orders.
const OrderSystem = "http://example.org/fhir/sid/infusion-order"

// Patient returns the resources of patient i, in the order they happen:
// an opioid order, the baseline pain score and the infusion order at the
// consultation, a body weight on the first day of the course, each session
// (pain before, the administration, vital signs, side effects, pain after), a
// follow-up pain score 30 days after the last session and the opioid order
// after the course. It depends only on the seed, the configuration and i.
func (g *Generator) Patient(i int) []Resource {
	rng := rand.New(rand.NewPCG(g.cfg.Seed, uint64(i)))
	pid := PatientID(i)
	p := &patient{g: g, rng: rng, id: pid, ref: "Patient/" + pid}
	p.course(i)
	return p.out
}

type patient struct {
	g    *Generator
	rng  *rand.Rand
	id   string
	ref  string
	out  []Resource
	n    int
	kg   float64
	pain float64
}

func (p *patient) add(typ string, r map[string]any) string {
	p.n++
	id := fmt.Sprintf("%s-%s-%d", p.id, shortType[typ], p.n)
	r["resourceType"] = typ
	r["id"] = id
	data, err := json.Marshal(r)
	if err != nil {
		// Only maps, strings, numbers and slices go in: it cannot fail.
		panic(fmt.Errorf("synth: encoding %s: %w", typ, err))
	}
	p.out = append(p.out, Resource{Type: typ, ID: id, JSON: data})
	return typ + "/" + id
}

var shortType = map[string]string{"MedicationRequest": "mr", "MedicationAdministration": "ma", "Observation": "obs"}

func (p *patient) chance(rate float64) bool { return p.rng.Float64() < rate }

func (p *patient) pickDrug() drug {
	x := p.rng.Float64()
	for _, d := range drugs {
		if x < d.share {
			return d
		}
		x -= d.share
	}
	return drugs[0]
}

func (p *patient) pickOpioid() opioid {
	x := p.rng.Float64()
	for _, o := range opioids {
		if x < o.share {
			return o
		}
		x -= o.share
	}
	return opioids[0]
}

// course adds the resources of one patient's infusion course.
func (p *patient) course(i int) {
	rates := &p.g.rates
	d := p.pickDrug()
	cond := conditions[p.rng.IntN(len(conditions))]
	switch {
	case d.class == "ketamine" && p.chance(0.7):
		cond = conditions[0] // ketamine is mostly given for CRPS
	case d.class == "vitamin-nutrient":
		cond = conditions[1] // Myers' infusions are given for fibromyalgia
	}
	day := p.g.cfg.Start.AddDate(0, 0, p.rng.IntN(365))
	start := time.Date(day.Year(), day.Month(), day.Day(), 9, 0, 0, 0, time.UTC)
	p.kg = math.Round((55+p.rng.Float64()*45)*10) / 10
	baseline := float64(6 + p.rng.IntN(4))
	p.pain = baseline
	responder := p.chance(rates.Response[d.class])
	// The share of pain the course takes away: half or more for a
	// responder, under a third for the others.
	relief := 0.3 * p.rng.Float64()
	if responder {
		relief = 0.5 + 0.3*p.rng.Float64()
	}
	home := d.home && p.chance(rates.Home)

	// Opioids before the course; a responder's are tapered after it.
	op := p.pickOpioid()
	dose := op.doses[p.rng.IntN(len(op.doses))]
	p.opioid(op, dose, op.perDay, start.AddDate(0, 0, -45), start.AddDate(0, 0, 45))
	// The consultation, a week before the course: the baseline pain score,
	// then the order.
	consultation := start.AddDate(0, 0, -7)
	p.observation(painScore(baseline), consultation.Add(-30*time.Minute), "")
	setting := "outpatient"
	if home {
		setting = "community"
	}
	order := p.add("MedicationRequest", map[string]any{
		"identifier":                []any{map[string]any{"system": OrderSystem, "value": OrderIdentifier(i)}},
		"status":                    "active",
		"intent":                    "order",
		"category":                  []any{coded("http://terminology.hl7.org/CodeSystem/medicationrequest-category", setting, "")},
		"medicationCodeableConcept": codeable("http://www.nlm.nih.gov/research/umls/rxnorm", d.code, d.display),
		"subject":                   map[string]any{"reference": p.ref},
		"authoredOn":                consultation.Format(time.RFC3339),
		"reasonCode":                []any{codeable("http://snomed.info/sct", cond.code, cond.display)},
		"dosageInstruction": []any{map[string]any{
			"route": codeable("http://snomed.info/sct", "47625008", "Intravenous route"),
			"timing": map[string]any{"repeat": map[string]any{
				"count": d.sessions, "duration": d.hours, "durationUnit": "h",
				"frequency": 1, "period": d.intervalDays, "periodUnit": "d",
			}},
			"doseAndRate": []any{map[string]any{"rateQuantity": quantity(d.rate, d.rateUnit)}},
		}},
	})
	p.observation(vital("29463-7", "Body weight", p.kg, "kg", "kg"), start.Add(-30*time.Minute), "")
	for s := range d.sessions {
		at := start.AddDate(0, 0, s*d.intervalDays)
		after := p.painAfter(baseline, relief, responder, s+1, d.sessions)
		p.session(d, order, at, setting, after)
	}
	end := start.AddDate(0, 0, (d.sessions-1)*d.intervalDays+30)
	p.observation(painScore(p.pain), end, "")
	perDay := op.perDay
	if responder {
		dose, perDay = taper(op, dose)
	}
	p.opioid(op, dose, perDay, end.AddDate(0, 0, 1), end.AddDate(0, 0, 90))
}

// painAfter returns the pain score after session s of n: on the way from
// baseline to baseline × (1 − relief), with some noise, and at the last
// session half the baseline or less for a responder, more than half for
// the others.
func (p *patient) painAfter(baseline, relief float64, responder bool, s, n int) float64 {
	target := baseline * (1 - relief*float64(s)/float64(n))
	switch {
	case s < n:
		return math.Min(10, math.Max(0, math.Round(target+p.rng.Float64()-0.5)))
	case responder:
		return math.Floor(target)
	default:
		return math.Ceil(target)
	}
}

// taper returns a responder's opioid regimen after the course: half the
// dose, twice a day by mouth; a patch of half the strength (50 → 25,
// 25 → 12 ug/h).
func taper(op opioid, dose float64) (float64, int) {
	if op.patch {
		return math.Floor(dose / 2), 0
	}
	return dose / 2, 2
}

// session adds one administration with its pain scores, vitals and side
// effects; painAfter is the score after it.
func (p *patient) session(d drug, order string, at time.Time, setting string, painAfter float64) {
	rates := &p.g.rates
	p.observation(painScore(p.pain), at.Add(-10*time.Minute), "")
	nauseous := p.chance(rates.Nausea)
	stopped := nauseous && p.chance(rates.Stop)
	end := at.Add(time.Duration(d.hours * float64(time.Hour)))
	status := "completed"
	if stopped {
		status = "stopped"
		end = at.Add(time.Duration(d.hours * float64(time.Hour) / 2))
	}
	admin := map[string]any{
		"status":                    status,
		"category":                  coded("http://terminology.hl7.org/CodeSystem/medication-admin-category", setting, ""),
		"medicationCodeableConcept": codeable("http://www.nlm.nih.gov/research/umls/rxnorm", d.code, d.display),
		"subject":                   map[string]any{"reference": p.ref},
		"effectivePeriod":           map[string]any{"start": at.Format(time.RFC3339), "end": end.Format(time.RFC3339)},
		"request":                   map[string]any{"reference": order},
		"dosage": map[string]any{
			"route":        codeable("http://snomed.info/sct", "47625008", "Intravenous route"),
			"rateQuantity": quantity(d.rate, d.rateUnit),
		},
	}
	if stopped {
		admin["statusReason"] = []any{codeable(nausea.system, nausea.code, nausea.display)}
	}
	ma := p.add("MedicationAdministration", admin)
	vitals := at.Add(15 * time.Minute)
	p.observation(bloodPressure(115+p.rng.IntN(30), 70+p.rng.IntN(20)), vitals, ma)
	p.observation(vital("8867-4", "Heart rate", float64(60+p.rng.IntN(40)), "/min", "beats/minute"), vitals, ma)
	p.observation(vital("59408-5", "Oxygen saturation", float64(94+p.rng.IntN(6)), "%", "%"), vitals, ma)
	// Side effects, each drawn for every session (dissociation for ketamine
	// only), at times before a stopped session ends.
	if d.class == "ketamine" && p.chance(rates.Dissociation) {
		p.observation(sideEffect(dissociation), at.Add(20*time.Minute), ma)
	}
	if nauseous {
		p.observation(sideEffect(nausea), at.Add(25*time.Minute), ma)
	}
	if p.chance(rates.Dizziness) {
		p.observation(sideEffect(dizziness), at.Add(27*time.Minute), ma)
	}
	if p.chance(rates.Headache) {
		p.observation(sideEffect(headache), at.Add(29*time.Minute), ma)
	}
	p.pain = painAfter
	p.observation(painScore(p.pain), end.Add(15*time.Minute), ma)
}

func (p *patient) observation(r map[string]any, at time.Time, partOf string) {
	r["status"] = "final"
	r["subject"] = map[string]any{"reference": p.ref}
	r["effectiveDateTime"] = at.Format(time.RFC3339)
	if partOf != "" {
		r["partOf"] = []any{map[string]any{"reference": partOf}}
	}
	p.add("Observation", r)
}

// opioid adds an opioid order for the period: oral doses perDay times a
// day, or a transdermal patch of dose ug/h changed every patchDays days.
func (p *patient) opioid(op opioid, dose float64, perDay int, from, to time.Time) {
	dosage := map[string]any{
		"route":       codeable("http://snomed.info/sct", "26643006", "Oral route"),
		"timing":      map[string]any{"repeat": map[string]any{"frequency": perDay, "period": 1, "periodUnit": "d"}},
		"doseAndRate": []any{map[string]any{"doseQuantity": quantity(dose, "mg")}},
	}
	if op.patch {
		dosage = map[string]any{
			"text":   fmt.Sprintf("one %g mcg/h patch every %d days", dose, patchDays),
			"route":  codeable("http://snomed.info/sct", "45890007", "Transdermal route"),
			"timing": map[string]any{"repeat": map[string]any{"frequency": 1, "period": patchDays, "periodUnit": "d"}},
			"doseAndRate": []any{map[string]any{"doseQuantity": map[string]any{
				"value": dose, "unit": "mcg/h", "system": "http://unitsofmeasure.org", "code": "ug/h",
			}}},
		}
	}
	p.add("MedicationRequest", map[string]any{
		"status":                    "active",
		"intent":                    "order",
		"category":                  []any{coded("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community", "")},
		"medicationCodeableConcept": codeable("http://www.nlm.nih.gov/research/umls/rxnorm", op.code, op.display),
		"subject":                   map[string]any{"reference": p.ref},
		"authoredOn":                from.Format(time.RFC3339),
		"dosageInstruction":         []any{dosage},
		"dispenseRequest": map[string]any{
			"validityPeriod": map[string]any{"start": from.Format("2006-01-02"), "end": to.Format("2006-01-02")},
		},
	})
}

func painScore(v float64) map[string]any {
	return map[string]any{
		"category":      []any{coded("http://terminology.hl7.org/CodeSystem/observation-category", "survey", "Survey")},
		"code":          codeable("http://loinc.org", "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
		"valueQuantity": map[string]any{"value": v, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"},
	}
}

func vital(code, display string, v float64, unit, text string) map[string]any {
	return map[string]any{
		"category":      []any{coded("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs")},
		"code":          codeable("http://loinc.org", code, display),
		"valueQuantity": map[string]any{"value": v, "unit": text, "system": "http://unitsofmeasure.org", "code": unit},
	}
}

func bloodPressure(sys, dia int) map[string]any {
	comp := func(code, display string, v int) map[string]any {
		return map[string]any{"code": codeable("http://loinc.org", code, display), "valueQuantity": quantity(float64(v), "mm[Hg]")}
	}
	return map[string]any{
		"category":  []any{coded("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs")},
		"code":      codeable("http://loinc.org", "85354-9", "Blood pressure panel"),
		"component": []any{comp("8480-6", "Systolic blood pressure", sys), comp("8462-4", "Diastolic blood pressure", dia)},
	}
}

func sideEffect(c sideEffectCode) map[string]any {
	return map[string]any{
		"category":             []any{coded("http://terminology.hl7.org/CodeSystem/observation-category", "exam", "Exam")},
		"code":                 codeable(c.system, c.code, c.display),
		"valueCodeableConcept": codeable("http://snomed.info/sct", "255604002", "Mild"),
	}
}

func codeable(system, code, display string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": system, "code": code, "display": display}}, "text": display}
}

func coded(system, code, display string) map[string]any {
	c := map[string]any{"system": system, "code": code}
	if display != "" {
		c["display"] = display
	}
	return map[string]any{"coding": []any{c}}
}

func quantity(v float64, unit string) map[string]any {
	return map[string]any{"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
}
