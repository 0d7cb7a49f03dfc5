// Package synth makes realistic, deterministic infusion-therapy data:
// patients with chronic pain conditions, infusion orders per protocol, the
// sessions given (some stopped early for nausea, some at home), pain scores
// before and after each session, vital signs, side effects, body weights
// and opioid orders. The same seed always yields the same resources.
package synth

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Config says what to generate. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	Patients int
	Seed     uint64
	Start    time.Time // the first course starts within a year after this
	// ResponseRate is the share of patients whose pain falls by half or
	// more over a course, by drug class.
	ResponseRate map[string]float64
	// NauseaRate is the chance a session brings nausea; StopRate the chance
	// that nausea stops the session.
	NauseaRate, StopRate float64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Patients: 100,
		Seed:     1,
		Start:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		ResponseRate: map[string]float64{
			"ketamine": 0.55, "lidocaine": 0.45, "vitamin-nutrient": 0.25, "gabapentinoid": 0.30,
		},
		NauseaRate: 0.15,
		StopRate:   0.4,
	}
}

// Resource is one generated resource.
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

var opioids = []struct {
	code, display string
	doseMg        float64
}{
	{"7804", "oxycodone", 5}, {"7052", "morphine", 15}, {"10689", "tramadol", 50},
}

// Generator makes the resources of each patient.
type Generator struct{ cfg Config }

// New returns a Generator.
func New(cfg Config) *Generator {
	def := DefaultConfig()
	if cfg.Patients <= 0 {
		cfg.Patients = def.Patients
	}
	if cfg.Start.IsZero() {
		cfg.Start = def.Start
	}
	if cfg.ResponseRate == nil {
		cfg.ResponseRate = def.ResponseRate
	}
	if cfg.NauseaRate == 0 {
		cfg.NauseaRate = def.NauseaRate
	}
	if cfg.StopRate == 0 {
		cfg.StopRate = def.StopRate
	}
	return &Generator{cfg: cfg}
}

// PatientID returns the id of patient i.
func PatientID(i int) string { return fmt.Sprintf("pat-%06d", i) }

// OrderIdentifier returns the identifier value of patient i's infusion order.
func OrderIdentifier(i int) string { return fmt.Sprintf("INF-%06d", i) }

// Identifier system of the generated infusion orders.
const OrderSystem = "http://example.org/fhir/sid/infusion-order"

// Patient returns the resources of patient i, in the order they happen.
func (g *Generator) Patient(i int) []Resource {
	rng := rand.New(rand.NewPCG(g.cfg.Seed, uint64(i)))
	pid := PatientID(i)
	p := &patient{g: g, rng: rng, id: pid, ref: "Patient/" + pid}
	return p.course(i)
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
	data, _ := json.Marshal(r)
	p.out = append(p.out, Resource{Type: typ, ID: id, JSON: data})
	return typ + "/" + id
}

var shortType = map[string]string{"MedicationRequest": "mr", "MedicationAdministration": "ma", "Observation": "obs"}

func (p *patient) pick() drug {
	x := p.rng.Float64()
	for _, d := range drugs {
		if x < d.share {
			return d
		}
		x -= d.share
	}
	return drugs[0]
}

func (p *patient) course(i int) []Resource {
	d := p.pick()
	cond := conditions[p.rng.IntN(len(conditions))]
	if d.class == "ketamine" && p.rng.Float64() < 0.7 {
		cond = conditions[0] // ketamine is mostly given for CRPS
	}
	start := p.g.cfg.Start.Add(time.Duration(p.rng.IntN(365*24)) * time.Hour).Truncate(time.Hour).Add(9 * time.Hour)
	start = time.Date(start.Year(), start.Month(), start.Day(), 9, 0, 0, 0, time.UTC)
	p.kg = math.Round((55+p.rng.Float64()*45)*10) / 10
	p.pain = float64(6 + p.rng.IntN(4))
	responder := p.rng.Float64() < p.g.cfg.ResponseRate[d.class]
	home := d.home && p.rng.Float64() < 0.3

	// Opioids before the course; a responder's are tapered after it.
	op := opioids[p.rng.IntN(len(opioids))]
	p.opioid(op.code, op.display, op.doseMg, 4, start.AddDate(0, 0, -45), start.AddDate(0, 0, 45))
	p.observation(vital("29463-7", "Body weight", p.kg, "kg", "kg"), start.Add(-30*time.Minute), "")
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
		"authoredOn":                start.AddDate(0, 0, -7).Format(time.RFC3339),
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
	for s := 0; s < d.sessions; s++ {
		at := start.AddDate(0, 0, s*d.intervalDays)
		p.session(d, order, at, responder, setting, s, d.sessions)
	}
	after := start.AddDate(0, 0, (d.sessions-1)*d.intervalDays+30)
	p.observation(painScore(p.pain), after, "")
	if responder {
		p.opioid(op.code, op.display, op.doseMg/2, 2, after.AddDate(0, 0, 1), after.AddDate(0, 0, 90))
	} else {
		p.opioid(op.code, op.display, op.doseMg, 4, after.AddDate(0, 0, 1), after.AddDate(0, 0, 90))
	}
	return p.out
}

// session adds one administration with its pain scores, vitals and side
// effects.
func (p *patient) session(d drug, order string, at time.Time, responder bool, setting string, s, sessions int) {
	p.observation(painScore(p.pain), at.Add(-10*time.Minute), "")
	nausea := p.rng.Float64() < p.g.cfg.NauseaRate
	stopped := nausea && p.rng.Float64() < p.g.cfg.StopRate
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
		admin["statusReason"] = []any{codeable("http://snomed.info/sct", "422587007", "Nausea")}
	}
	ma := p.add("MedicationAdministration", admin)
	mid := at.Add(30 * time.Minute)
	p.observation(bloodPressure(115+p.rng.IntN(30), 70+p.rng.IntN(20)), mid, ma)
	p.observation(vital("8867-4", "Heart rate", float64(60+p.rng.IntN(40)), "/min", "beats/minute"), mid, ma)
	p.observation(vital("59408-5", "Oxygen saturation", float64(94+p.rng.IntN(6)), "%", "%"), mid, ma)
	if nausea {
		p.observation(sideEffect("422587007", "Nausea"), mid.Add(20*time.Minute), ma)
	}
	if p.rng.Float64() < 0.08 {
		p.observation(sideEffect("404640003", "Dizziness"), mid.Add(25*time.Minute), ma)
	}
	drop := 0.05
	if responder {
		drop = 0.6 / float64(sessions)
	}
	p.pain = math.Max(0, math.Round(p.pain*(1-drop)-p.rng.Float64()*0.5))
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

// opioid adds an oral opioid order, doses a day for the period.
func (p *patient) opioid(code, display string, doseMg float64, perDay int, from, to time.Time) {
	p.add("MedicationRequest", map[string]any{
		"status":                    "active",
		"intent":                    "order",
		"category":                  []any{coded("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community", "")},
		"medicationCodeableConcept": codeable("http://www.nlm.nih.gov/research/umls/rxnorm", code, display),
		"subject":                   map[string]any{"reference": p.ref},
		"authoredOn":                from.Format(time.RFC3339),
		"dosageInstruction": []any{map[string]any{
			"route":       codeable("http://snomed.info/sct", "26643006", "Oral route"),
			"timing":      map[string]any{"repeat": map[string]any{"frequency": perDay, "period": 1, "periodUnit": "d"}},
			"doseAndRate": []any{map[string]any{"doseQuantity": quantity(doseMg, "mg")}},
		}},
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

func sideEffect(code, display string) map[string]any {
	return map[string]any{
		"category":             []any{coded("http://terminology.hl7.org/CodeSystem/observation-category", "exam", "Exam")},
		"code":                 codeable("http://snomed.info/sct", code, display),
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
