package synth_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"infusion/fhir/fhirtest"
	"infusion/mapping"
	"infusion/mapping/synth"
)

// TestValidAndDeterministic checks that every generated resource is valid
// R4 and that the same seed gives the same bytes.
func TestValidAndDeterministic(t *testing.T) {
	g := synth.New(synth.Config{Seed: 7})
	again := synth.New(synth.Config{Seed: 7})
	other := synth.New(synth.Config{Seed: 8})
	types := map[string]int{}
	differs := false
	for i := range 30 {
		a, b, c := g.Patient(i), again.Patient(i), other.Patient(i)
		if len(a) != len(b) {
			t.Fatalf("patient %d: %d then %d resources", i, len(a), len(b))
		}
		for j := range a {
			if !bytes.Equal(a[j].JSON, b[j].JSON) {
				t.Fatalf("patient %d resource %d differs between runs", i, j)
			}
			fhirtest.CheckResource(t, a[j].JSON)
			types[a[j].Type]++
		}
		differs = differs || len(a) != len(c) || !bytes.Equal(a[0].JSON, c[0].JSON)
	}
	if !differs {
		t.Error("another seed gave the same data")
	}
	for _, typ := range synth.Types() {
		if types[typ] == 0 {
			t.Errorf("no %s", typ)
		}
	}
	t.Logf("30 patients: %v", types)
}

// TestEveryVariantValid generates with high rates, so that every kind of
// resource the generator can make turns up, and validates each one against
// the R4 schema and rules. It checks that the model's mapping reads the
// side effects, opioids and settings as meant.
func TestEveryVariantValid(t *testing.T) {
	g := synth.New(synth.Config{Patients: 300, Seed: 3, Rates: &synth.Rates{
		Nausea: 0.5, Stop: 0.5, Dizziness: 0.3, Headache: 0.3, Dissociation: 0.5, Home: 0.5,
	}})
	mapper := mapping.NewMapper(mapping.DefaultClassifier())
	seen := map[string]int{}
	ids := map[string]bool{}
	for i := range g.Patients() {
		rs := g.Patient(i)
		for _, r := range rs {
			if ids[r.Type+"/"+r.ID] {
				t.Fatalf("%s/%s made twice", r.Type, r.ID)
			}
			ids[r.Type+"/"+r.ID] = true
			fhirtest.CheckResource(t, r.JSON)
			if t.Failed() {
				t.Fatalf("patient %d: invalid %s", i, r.JSON)
			}
			rows, err := mapper.Map(r.Type, r.ID, r.JSON)
			if err != nil {
				t.Fatalf("mapping %s/%s: %v", r.Type, r.ID, err)
			}
			if o := rows.Order; o != nil {
				seen["order "+string(o.Drug.Class)+" "+o.Drug.Code+" "+o.Route.Code+" "+string(o.Setting)]++
			}
			if a := rows.Administration; a != nil {
				seen["administration "+a.Status+" "+string(a.Setting)]++
			}
			for _, a := range rows.Assessments {
				seen["assessment "+string(a.Kind)+" "+a.Code.Code]++
			}
		}
	}
	for _, want := range []string{
		"order ketamine 6130 47625008 clinic",
		"order lidocaine 6387 47625008 home",
		"order lidocaine 6387 47625008 clinic",
		"order vitamin-nutrient 6585 47625008 home",
		"order gabapentinoid 25480 47625008 clinic",
		"order opioid 7804 26643006 home",
		"order opioid 7052 26643006 home",
		"order opioid 10689 26643006 home",
		"order opioid 6813 26643006 home",
		"order opioid 4337 45890007 home",
		"administration completed clinic",
		"administration completed home",
		"administration stopped clinic",
		"administration stopped home",
		"assessment side-effect 422587007",
		"assessment side-effect 404640003",
		"assessment side-effect 25064002",
		"assessment pain 72514-3",
		"assessment vital-sign 29463-7",
		"assessment vital-sign 85354-9",
	} {
		if seen[want] == 0 {
			t.Errorf("no %s", want)
		}
	}
	// Dissociation has no verified SNOMED code: a local code, which the
	// mapping does not (yet) know as a side effect.
	if seen["assessment other dissociation"]+seen["assessment side-effect dissociation"] == 0 {
		t.Error("no dissociation")
	}
	t.Logf("%d resources: %v", len(ids), seen)
}

// generated is what a test reads back from the generated resources.
type generated struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Status       string `json:"status"`
	Subject      struct {
		Reference string `json:"reference"`
	} `json:"subject"`
	Identifier []struct {
		System string `json:"system"`
	} `json:"identifier"`
	Category                  json.RawMessage `json:"category"`
	MedicationCodeableConcept struct {
		Coding []struct{ Code string } `json:"coding"`
	} `json:"medicationCodeableConcept"`
	Code struct {
		Coding []struct{ System, Code string } `json:"coding"`
	} `json:"code"`
	PartOf []struct {
		Reference string `json:"reference"`
	} `json:"partOf"`
	ValueQuantity *struct {
		Value float64 `json:"value"`
	} `json:"valueQuantity"`
	DosageInstruction []struct {
		DoseAndRate []struct {
			DoseQuantity *struct {
				Value float64 `json:"value"`
			} `json:"doseQuantity"`
		} `json:"doseAndRate"`
		Timing struct {
			Repeat struct {
				Frequency int `json:"frequency"`
			} `json:"repeat"`
		} `json:"timing"`
	} `json:"dosageInstruction"`
}

var classOfCode = map[string]string{"6130": "ketamine", "6387": "lidocaine", "6585": "vitamin-nutrient", "25480": "gabapentinoid"}

// stats are counts taken from generated resources.
type stats struct {
	sessions, ketamineSessions, stopped           int
	effects                                       map[string]int // side-effect code → sessions with it
	homeAllowed, home                             int            // courses of lidocaine and magnesium, and of those at home
	courses, responders                           map[string]int // by class
	tapered                                       int            // patients whose opioid order after the course is lower
	sessionsByClass                               map[string]int
	patientsWithoutCourse, responderNotTapered    int
	firstPainNotBaseline, painOutsideScale, other int
}

func collect(t *testing.T, g *synth.Generator) stats {
	t.Helper()
	st := stats{effects: map[string]int{}, courses: map[string]int{}, responders: map[string]int{}, sessionsByClass: map[string]int{}}
	for i := range g.Patients() {
		var pains []float64
		var opioidMME []float64 // dose × doses a day (or patch strength), before and after
		class := ""
		sessionClass := map[string]string{}
		for _, r := range g.Patient(i) {
			var res generated
			if err := json.Unmarshal(r.JSON, &res); err != nil {
				t.Fatal(err)
			}
			switch res.ResourceType {
			case "MedicationRequest":
				if len(res.Identifier) > 0 { // the infusion order
					class = classOfCode[res.MedicationCodeableConcept.Coding[0].Code]
					st.courses[class]++
					if class == "lidocaine" || class == "vitamin-nutrient" {
						st.homeAllowed++
						if bytes.Contains(res.Category, []byte(`"community"`)) {
							st.home++
						}
					}
					continue
				}
				di := res.DosageInstruction[0]
				per := float64(di.Timing.Repeat.Frequency)
				if res.MedicationCodeableConcept.Coding[0].Code == "4337" {
					per = 1 // a patch: its strength
				}
				opioidMME = append(opioidMME, di.DoseAndRate[0].DoseQuantity.Value*per)
			case "MedicationAdministration":
				st.sessions++
				st.sessionsByClass[class]++
				sessionClass["MedicationAdministration/"+res.ID] = class
				if class == "ketamine" {
					st.ketamineSessions++
				}
				if res.Status == "stopped" {
					st.stopped++
				}
			case "Observation":
				code := res.Code.Coding[0].Code
				switch {
				case code == "72514-3":
					v := res.ValueQuantity.Value
					if v < 0 || v > 10 || v != math.Trunc(v) {
						st.painOutsideScale++
					}
					pains = append(pains, v)
				case bytes.Contains(res.Category, []byte(`"exam"`)):
					st.effects[code]++
					if len(res.PartOf) != 1 || sessionClass[res.PartOf[0].Reference] == "" {
						t.Fatalf("side effect %s is not part of a session of its patient", res.ID)
					}
				}
			}
		}
		if class == "" {
			st.patientsWithoutCourse++
			continue
		}
		// The first pain score is the baseline at the consultation, the last
		// the follow-up a month after the course.
		responder := pains[len(pains)-1] <= pains[0]/2
		if pains[0] < 6 {
			st.firstPainNotBaseline++
		}
		if responder {
			st.responders[class]++
		}
		tapered := len(opioidMME) == 2 && opioidMME[1] < opioidMME[0]
		if tapered {
			st.tapered++
		}
		if responder != tapered {
			st.responderNotTapered++
		}
	}
	return st
}

// within checks that an observed share k/n is within three standard errors
// of the configured p.
func within(t *testing.T, name string, k, n int, p float64) {
	t.Helper()
	if n == 0 {
		t.Errorf("%s: nothing to count", name)
		return
	}
	got := float64(k) / float64(n)
	se := math.Sqrt(p * (1 - p) / float64(n))
	if math.Abs(got-p) > 3*se {
		t.Errorf("%s: %d of %d = %.4f, configured %.4f (3 SE = %.4f)", name, k, n, got, p, 3*se)
	} else {
		t.Logf("%s: %d of %d = %.4f, configured %.4f ± %.4f", name, k, n, got, p, 3*se)
	}
}

// TestRates generates 2,000 patients with configured rates and checks that
// what the resources show — side effects per session, early stops, home
// courses and responders per drug class — is within three standard errors
// of what was configured.
func TestRates(t *testing.T) {
	rates := synth.Rates{
		Response: map[string]float64{"ketamine": 0.7, "lidocaine": 0.35, "vitamin-nutrient": 0.2, "gabapentinoid": 0.5},
		Nausea:   0.22, Stop: 0.3, Dizziness: 0.12, Headache: 0.09, Dissociation: 0.33, Home: 0.6,
	}
	if err := rates.Validate(); err != nil {
		t.Fatal(err)
	}
	g := synth.New(synth.Config{Patients: 2000, Seed: 11, Rates: &rates})
	st := collect(t, g)
	if st.patientsWithoutCourse != 0 {
		t.Errorf("%d patients without an infusion course", st.patientsWithoutCourse)
	}
	if st.responderNotTapered != 0 {
		t.Errorf("%d patients whose opioid taper does not follow their response", st.responderNotTapered)
	}
	if st.painOutsideScale != 0 || st.firstPainNotBaseline != 0 {
		t.Errorf("pain scores: %d off the 0-10 scale, %d first scores not a baseline of 6-9", st.painOutsideScale, st.firstPainNotBaseline)
	}
	within(t, "nausea per session", st.effects["422587007"], st.sessions, rates.Nausea)
	within(t, "stopped per session with nausea", st.stopped, st.effects["422587007"], rates.Stop)
	within(t, "dizziness per session", st.effects["404640003"], st.sessions, rates.Dizziness)
	within(t, "headache per session", st.effects["25064002"], st.sessions, rates.Headache)
	within(t, "dissociation per ketamine session", st.effects["dissociation"], st.ketamineSessions, rates.Dissociation)
	within(t, "home courses (lidocaine, magnesium)", st.home, st.homeAllowed, rates.Home)
	for _, class := range synth.Classes() {
		within(t, "responders to "+class, st.responders[class], st.courses[class], rates.Response[class])
	}
}

// TestZeroRates checks that a rate of zero is taken as given, not replaced
// by its default: no side effects, no stops, no home courses, no
// responders.
func TestZeroRates(t *testing.T) {
	zero := synth.Rates{Response: map[string]float64{"ketamine": 0, "lidocaine": 0, "vitamin-nutrient": 0, "gabapentinoid": 0}}
	st := collect(t, synth.New(synth.Config{Patients: 300, Seed: 5, Rates: &zero}))
	if len(st.effects) != 0 || st.stopped != 0 || st.home != 0 || st.tapered != 0 {
		t.Errorf("zero rates gave side effects %v, %d stopped, %d at home, %d tapered", st.effects, st.stopped, st.home, st.tapered)
	}
	for class, n := range st.responders {
		if n != 0 {
			t.Errorf("%d responders to %s", n, class)
		}
	}
	// A class left out of Response takes its default rate.
	partial := synth.Rates{Response: map[string]float64{"ketamine": 0}}
	st = collect(t, synth.New(synth.Config{Patients: 300, Seed: 5, Rates: &partial}))
	if st.responders["ketamine"] != 0 || st.responders["lidocaine"] == 0 {
		t.Errorf("responders %v: want none to ketamine and some to lidocaine (default)", st.responders)
	}
}

func TestConfigChanges(t *testing.T) {
	base := synth.New(synth.Config{Seed: 1}).Patient(0)
	if !bytes.Equal(base[0].JSON, synth.New(synth.DefaultConfig()).Patient(0)[0].JSON) {
		t.Error("the zero config and DefaultConfig differ")
	}
	later := synth.New(synth.Config{Seed: 1, Start: synth.DefaultConfig().Start.AddDate(1, 0, 0)}).Patient(0)
	if bytes.Equal(base[0].JSON, later[0].JSON) {
		t.Error("-start changed nothing")
	}
	// The generator keeps its own copy of the rates.
	r := synth.DefaultRates()
	g := synth.New(synth.Config{Seed: 1, Rates: &r})
	before := g.Patient(4)
	r.Nausea, r.Response["ketamine"] = 1, 0
	after := g.Patient(4)
	for i := range before {
		if !bytes.Equal(before[i].JSON, after[i].JSON) {
			t.Fatal("changing the caller's rates changed the generator")
		}
	}
}

func TestValidateAndParse(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want map[string]float64
		err  string
	}{
		{"ketamine=0.6", map[string]float64{"ketamine": 0.6}, ""},
		{"ketamine=0.6, lidocaine=0", map[string]float64{"ketamine": 0.6, "lidocaine": 0}, ""},
		{"gabapentinoid=1,vitamin-nutrient=0.25", map[string]float64{"gabapentinoid": 1, "vitamin-nutrient": 0.25}, ""},
		{"", nil, "no rates"},
		{"ketamine", nil, `"ketamine" is not class=rate`},
		{"=0.5", nil, "not class=rate"},
		{"ketamine=high", nil, `"high" is not a number`},
		{"ketamine=1.2", nil, "ketamine: 1.2 is not between 0 and 1"},
		{"ketamine=-0.1", nil, "ketamine: -0.1 is not between 0 and 1"},
		{"ketamine=NaN", nil, "ketamine: NaN is not between 0 and 1"},
		{"opium=0.5", nil, `unknown drug class "opium"`},
	} {
		got, err := synth.ParseResponse(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseResponse(%q): error %v, want one with %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ParseResponse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	r := synth.DefaultRates()
	if err := r.Validate(); err != nil {
		t.Errorf("the default rates: %v", err)
	}
	r.Headache = 1.5
	var re *synth.RateError
	if err := r.Validate(); !errors.As(err, &re) || re.Name != "Headache" {
		t.Errorf("headache 1.5: %v", err)
	}
	if err := (synth.Config{Rates: &synth.Rates{Response: map[string]float64{"aspirin": 0.1}}}).Validate(); err == nil {
		t.Error("an unknown class passed")
	}
}

// TestNDJSON writes patients through the NDJSON writer and reads them back.
func TestNDJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	w, err := synth.CreateNDJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	g := synth.New(synth.Config{Seed: 2})
	want := map[string][]string{}
	for i := range 20 {
		rs := g.Patient(i)
		for _, r := range rs {
			want[r.Type] = append(want[r.Type], string(r.JSON))
		}
		if err := w.Write(rs); err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("%d files before Close, want 3 temporary ones", len(entries))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != "[MedicationAdministration.ndjson MedicationRequest.ndjson Observation.ndjson]" {
		t.Errorf("files %v", names)
	}
	for _, path := range w.Files() {
		typ := strings.TrimSuffix(filepath.Base(path), ".ndjson")
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
		if strings.Join(lines, "\n") != strings.Join(want[typ], "\n") {
			t.Errorf("%s: %d lines, want %d, or they differ", path, len(lines), len(want[typ]))
		}
	}

	// Discard leaves nothing behind.
	dir2 := filepath.Join(t.TempDir(), "discarded")
	w, err = synth.CreateNDJSON(dir2)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(g.Patient(0))
	w.Discard()
	if entries, _ := os.ReadDir(dir2); len(entries) != 0 {
		t.Errorf("Discard left %d files", len(entries))
	}
}

// TestTransactionBundle checks that the Bundle is a valid transaction of
// PUT entries, one per resource.
func TestTransactionBundle(t *testing.T) {
	g := synth.New(synth.Config{Seed: 4})
	rs := append(g.Patient(0), g.Patient(1)...)
	body := synth.TransactionBundle(rs)
	fhirtest.CheckResource(t, body)
	var b struct {
		Type  string `json:"type"`
		Entry []struct {
			Request struct {
				Method, URL string
			} `json:"request"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != "transaction" || len(b.Entry) != len(rs) {
		t.Fatalf("%s Bundle of %d entries, want a transaction of %d", b.Type, len(b.Entry), len(rs))
	}
	for i, e := range b.Entry {
		if e.Request.Method != "PUT" || e.Request.URL != rs[i].Type+"/"+rs[i].ID || !bytes.Equal(e.Resource, rs[i].JSON) {
			t.Errorf("entry %d: %s %s", i, e.Request.Method, e.Request.URL)
		}
	}
	fhirtest.CheckResource(t, synth.TransactionBundle(nil))
}

func BenchmarkPatient(b *testing.B) {
	g := synth.New(synth.Config{Seed: 1})
	n := 0
	for i := 0; b.Loop(); i++ {
		n += len(g.Patient(i))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}
