// Package mapping holds the internal infusion-therapy model — orders,
// administrations and assessments — and the pure mapping from FHIR resources
// to it. It knows nothing of HTTP or SQL: the store writes its rows in the
// same transaction as the resource version they come from, and the protocol
// checks and outcome analytics read them.
package mapping

import "time"

// DrugClass is the therapeutic class of an ordered or given medication.
type DrugClass string

// The drug classes. Opioid orders are kept apart so that analytics can sum
// them as morphine milligram equivalents.
const (
	ClassKetamine      DrugClass = "ketamine"
	ClassLidocaine     DrugClass = "lidocaine"
	ClassGabapentinoid DrugClass = "gabapentinoid"
	ClassVitamin       DrugClass = "vitamin-nutrient"
	ClassOpioid        DrugClass = "opioid"
	ClassOther         DrugClass = "other"
)

// Setting is where an infusion is ordered or given, from FHIR's category.
type Setting string

// The settings. An empty Setting means the resource does not say.
const (
	SettingClinic Setting = "clinic" // category outpatient or inpatient
	SettingHome   Setting = "home"   // category community
)

// AssessmentKind says what an assessment measures.
type AssessmentKind string

// The assessment kinds.
const (
	KindPain       AssessmentKind = "pain"
	KindVitalSign  AssessmentKind = "vital-sign"
	KindSideEffect AssessmentKind = "side-effect"
	KindDrugLevel  AssessmentKind = "drug-level"
	KindOther      AssessmentKind = "other"
)

// Coding is a code with its system and display.
type Coding struct {
	System  string
	Code    string
	Display string
}

// Quantity is a value with its unit: the UCUM code when the quantity has
// one, else the unit text.
type Quantity struct {
	Value float64
	Unit  string
}

// Drug is the medication of an order or administration.
type Drug struct {
	Coding             // the RxNorm coding when there is one, else the first
	Class    DrugClass // from the ingredient codes and names
	Form     Coding    // dose form of a contained Medication, e.g. a transdermal patch
	Strength *Ratio    // concentration of the first ingredient with a strength
}

// Ratio is a numerator over a denominator, e.g. 500 mg per 10 mL.
type Ratio struct {
	Numerator   Quantity
	Denominator Quantity
}

// Ingredient is one ingredient of a contained Medication.
type Ingredient struct {
	Coding
	Strength *Ratio
}

// Order is one MedicationRequest (every one, not only infusions).
type Order struct {
	ID          string
	Patient     string // "Patient/id", or "" when the subject is not a Patient
	Status      string
	Intent      string
	Priority    string
	AuthoredOn  time.Time // zero when absent
	Drug        Drug
	Ingredients []Ingredient
	Route       Coding
	Setting     Setting
	Indications []Coding // reasonCode codings
	ReasonRefs  []string // reasonReference, "Condition/id"

	// From the first dosageInstruction and its first doseAndRate.
	Dose      *Quantity // doseQuantity, e.g. 5 mg/kg
	DoseRange *Range    // doseRange
	Rate      *Quantity // rateQuantity, or rateRatio as one unit (100 mL per 1 h → 100 mL/h)
	RateRange *Range    // rateRange
	// RateFromRatio says Rate came from rateRatio rather than rateQuantity.
	RateFromRatio bool
	WeightBased   bool // dose or rate is per kg
	AsNeeded      bool
	// From timing.repeat.
	DurationMinutes float64 // length of one session; 0 when not given
	Frequency       int     // sessions per period
	Period          float64
	PeriodUnit      string  // UCUM unit of time
	IntervalHours   float64 // period / frequency, in hours; 0 when not given
	Sessions        int     // timing.repeat.count
	BoundsStart     time.Time
	BoundsEnd       time.Time
	// Dose caps.
	MaxDosePerAdministration *Quantity
	MaxDosePerLifetime       *Quantity
	// Dispensing, for oral orders (opioid analytics).
	ValidityStart      time.Time
	ValidityEnd        time.Time
	ExpectedSupplyDays float64
	DispenseQuantity   *Quantity
}

// Range is a low and high bound; either may be missing.
type Range struct {
	Low  *Quantity
	High *Quantity
}

// Administration is one MedicationAdministration: an infusion given (or not).
type Administration struct {
	ID           string
	Order        string // the request's id (MedicationRequest/{id}), "" when none
	Patient      string
	Status       string
	StatusReason []Coding
	Start        time.Time
	End          time.Time // equal to Start for an effectiveDateTime
	Drug         Drug
	Route        Coding
	Setting      Setting
	Dose         *Quantity
	Rate         *Quantity
	// RateFromRatio says Rate came from rateRatio rather than rateQuantity.
	RateFromRatio bool
}

// Assessment is one measured value of an Observation: the observation's own
// value (Index 0) or that of a component (Index i+1).
type Assessment struct {
	Observation    string // the Observation's id
	Index          int
	Patient        string
	Status         string
	Kind           AssessmentKind
	Category       string // the first observation-category code
	Code           Coding
	Value          *Quantity // a numeric value (valueQuantity, valueInteger)
	ValueCode      Coding    // valueCodeableConcept's first coding
	ValueBool      *bool
	ValueText      string // valueString, or the concept's text
	Effective      time.Time
	EffectiveEnd   time.Time
	Administration string // the MedicationAdministration it is part of (id), "" when none
}

// Rows is what one version of a resource maps to. A delete maps to no rows.
type Rows struct {
	Order          *Order
	Administration *Administration
	Assessments    []Assessment
	Finding        *Finding
}
