package mapping

import "strings"

// Code systems the mapping reads.
const (
	SystemRxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
	SystemSNOMED = "http://snomed.info/sct"
	SystemLOINC  = "http://loinc.org"
	// SystemSideEffect is this server's code system for the side effects
	// that have no verified SNOMED CT code: "dissociation".
	SystemSideEffect = "https://infusion.example.org/fhir/CodeSystem/side-effect"
	SystemUCUM       = "http://unitsofmeasure.org"
)

// Classifier assigns drug classes from RxNorm ingredient codes and, for
// codings without one (product codes, free text), from ingredient names.
type Classifier struct {
	byCode map[string]DrugClass // RxNorm code → class
	byName []nameClass          // checked in order on display and text
}

type nameClass struct {
	word  string
	class DrugClass
}

// DefaultClassifier knows the ingredients of the infusion classes and the
// opioids of the CDC 2022 MME table (RxNorm codes from the project's clinical
// reference).
func DefaultClassifier() *Classifier {
	c := &Classifier{byCode: map[string]DrugClass{}}
	add := func(class DrugClass, codes []string, names ...string) {
		for _, code := range codes {
			c.byCode[code] = class
		}
		for _, n := range names {
			c.byName = append(c.byName, nameClass{n, class})
		}
	}
	add(ClassKetamine, []string{"6130"}, "ketamine", "esketamine")
	add(ClassLidocaine, []string{"6387"}, "lidocaine", "lignocaine")
	add(ClassGabapentinoid, []string{"25480", "187832"}, "gabapentin", "pregabalin")
	add(ClassVitamin, []string{"6585", "1151", "11248", "10454"},
		"magnesium", "ascorbic", "vitamin", "cobalamin", "thiamine", "pyridoxine",
		"dexpanthenol", "calcium gluconate", "myers")
	add(ClassOpioid, []string{"7052", "7804", "5489", "3423", "4337", "10689", "787390", "6813",
		"2670", "7814", "1819", "6754", "6378", "1841", "8001", "7238", "23088", "7676"},
		"morphine", "oxycodone", "hydrocodone", "hydromorphone", "fentanyl", "tramadol",
		"tapentadol", "methadone", "codeine", "oxymorphone", "buprenorphine", "meperidine",
		"levorphanol", "butorphanol", "pentazocine", "nalbuphine", "dihydrocodeine", "opium")
	return c
}

// Classify returns the class of a medication from its codings, its text and
// the codings of its ingredients; ClassOther when nothing is known.
func (c *Classifier) Classify(codings []Coding, text string) DrugClass {
	for _, cd := range codings {
		if cd.System == SystemRxNorm {
			if class, ok := c.byCode[cd.Code]; ok {
				return class
			}
		}
	}
	names := strings.ToLower(text)
	for _, cd := range codings {
		names += " " + strings.ToLower(cd.Display)
	}
	for _, n := range c.byName {
		if strings.Contains(names, n.word) {
			return n.class
		}
	}
	return ClassOther
}

// assessmentKinds maps observation codes ("system|code") to kinds.
var assessmentKinds = func() map[string]AssessmentKind {
	m := map[string]AssessmentKind{}
	add := func(kind AssessmentKind, system string, codes ...string) {
		for _, c := range codes {
			m[system+"|"+c] = kind
		}
	}
	// Pain intensity: NRS 0–10, reported severity, Wong-Baker, past week, PROMIS.
	add(KindPain, SystemLOINC, "72514-3", "38208-5", "38221-8", "75893-8", "75260-0", "75261-8", "75262-6")
	// Vital signs: BP panel and parts, heart rate, respiratory rate, SpO2,
	// body weight, height, BMI, temperature.
	add(KindVitalSign, SystemLOINC, "85354-9", "8480-6", "8462-4", "8867-4", "9279-1", "59408-5",
		"2708-6", "29463-7", "3141-9", "8302-2", "39156-5", "8310-5")
	// Drug and electrolyte levels: lidocaine, magnesium, calcium.
	add(KindDrugLevel, SystemLOINC, "3714-3", "19123-9", "2601-3", "17861-6", "1994-3", "1995-0")
	// Side effects: nausea, vomiting, dizziness, headache, hallucinations,
	// hypertension, bradycardia, tachycardia, seizure, syncope, AV block.
	add(KindSideEffect, SystemSNOMED, "422587007", "422400008", "404640003", "25064002", "7011001",
		"38341003", "48867003", "3424008", "91175000", "271594007", "195042002")
	add(KindSideEffect, SystemSideEffect, "dissociation")
	return m
}()

// IsSideEffect reports whether a code names a side effect, e.g. a
// statusReason of a session stopped for nausea.
func IsSideEffect(c Coding) bool { return assessmentKinds[c.System+"|"+c.Code] == KindSideEffect }

// kindOf classifies an observation code; the category decides when the code
// is not known (vital-signs → vital sign).
func kindOf(code []Coding, category string) AssessmentKind {
	for _, c := range code {
		if k, ok := assessmentKinds[c.System+"|"+c.Code]; ok {
			return k
		}
	}
	if category == "vital-signs" {
		return KindVitalSign
	}
	return KindOther
}

// minutesPer converts a UCUM unit of time to minutes; 0 when unknown.
func minutesPer(unit string) float64 {
	switch unit {
	case "s":
		return 1.0 / 60
	case "min":
		return 1
	case "h":
		return 60
	case "d":
		return 24 * 60
	case "wk":
		return 7 * 24 * 60
	case "mo":
		return 30 * 24 * 60
	case "a":
		return 365 * 24 * 60
	}
	return 0
}
