// Command modelgen writes model.json, the FHIR R4 element model that package
// model embeds: for every type, its elements with their types,
// cardinality, choice groups, reference targets and required bindings, and the
// codes of every value set a required binding names.
//
// Its input is the R4 StructureDefinition digest published in the npm package
// "fhir" (FHIR.js 4.12.0, Apache-2.0; the definitions themselves are HL7's CC0
// FHIR R4 4.0.1 specification). To regenerate:
//
//	npm pack fhir@4.12.0 && tar xzf fhir-4.12.0.tgz
//	go run ./fhir/model/internal/modelgen -in package/profiles -out fhir/model/model.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
)

// sourceProperty is one entry of FHIR.js's types.json "_properties".
type sourceProperty struct {
	Name       string           `json:"_name"`
	Type       string           `json:"_type"`
	Choice     string           `json:"_choice"`
	Multiple   bool             `json:"_multiple"`
	Required   bool             `json:"_required"`
	Strength   string           `json:"_valueSetStrength"`
	ValueSet   string           `json:"_valueSet"`
	Targets    []string         `json:"_targetProfiles"`
	Properties []sourceProperty `json:"_properties"`
}

type sourceType struct {
	URL        string           `json:"_url"`
	Kind       string           `json:"_kind"`
	Properties []sourceProperty `json:"_properties"`
}

type sourceValueSet struct {
	Systems []struct {
		URI   string `json:"uri"`
		Codes []struct {
			Code string `json:"code"`
		} `json:"codes"`
	} `json:"systems"`
}

// The output format: keep in step with model.go in package model.
type element struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Choice   string   `json:"choice,omitempty"`
	Array    bool     `json:"array,omitempty"`
	Required bool     `json:"required,omitempty"`
	Binding  string   `json:"binding,omitempty"`
	Targets  []string `json:"targets,omitempty"`
}

type typeDef struct {
	Kind     string    `json:"kind"`
	Elements []element `json:"elements"`
}

type model struct {
	Source    string                         `json:"source"`
	Types     map[string]typeDef             `json:"types"`
	ValueSets map[string]map[string][]string `json:"valueSets"`
}

// missingTargets are reference targets the digest leaves out (it drops them
// on choice and backbone elements), for the stored types, the datatypes and
// Medication (the usual contained resource), taken from the R4
// StructureDefinitions.
var missingTargets = map[string][]string{
	"Annotation.authorReference":                   {"Practitioner", "Patient", "RelatedPerson", "Organization"},
	"Medication.ingredient.itemReference":          {"Substance", "Medication"},
	"MedicationAdministration.medicationReference": {"Medication"},
	"MedicationAdministration.performer.actor":     {"Practitioner", "PractitionerRole", "Patient", "RelatedPerson", "Device"},
	"MedicationRequest.reportedReference":          {"Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Organization"},
	"MedicationRequest.medicationReference":        {"Medication"},
	"MedicationRequest.dispenseRequest.performer":  {"Organization"},
	"DetectedIssue.evidence.detail":                {"Resource"},
	"DetectedIssue.mitigation.author":              {"Practitioner", "PractitionerRole"},
}

// simpleQuantities are the elements whose R4 type is SimpleQuantity (a
// Quantity without comparator); the digest calls them Quantity.
var simpleQuantities = map[string]bool{
	"Range.low": true, "Range.high": true, "SampledData.origin": true,
	"Dosage.maxDosePerAdministration": true, "Dosage.maxDosePerLifetime": true,
	"Dosage.doseAndRate.doseQuantity": true, "Dosage.doseAndRate.rateQuantity": true,
	"MedicationAdministration.dosage.dose": true, "MedicationAdministration.dosage.rateQuantity": true,
	"MedicationRequest.dispenseRequest.quantity": true, "MedicationRequest.dispenseRequest.initialFill.quantity": true,
	"Observation.referenceRange.low": true, "Observation.referenceRange.high": true,
}

func main() {
	in := flag.String("in", "package/profiles", "folder holding FHIR.js types.json and valuesets.json")
	out := flag.String("out", "model.json", "file to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		log.Fatal(err)
	}
}

func run(in, out string) error {
	var types map[string]sourceType
	if err := readJSON(filepath.Join(in, "types.json"), &types); err != nil {
		return err
	}
	var valueSets map[string]sourceValueSet
	if err := readJSON(filepath.Join(in, "valuesets.json"), &valueSets); err != nil {
		return err
	}
	m := model{
		Source:    "FHIR R4 4.0.1 StructureDefinitions, via the FHIR.js 4.12.0 digest (npm package fhir)",
		Types:     map[string]typeDef{},
		ValueSets: map[string]map[string][]string{},
	}
	for name, t := range types {
		addType(m.Types, name, t.Kind, t.Properties)
	}
	for _, t := range m.Types {
		for _, e := range t.Elements {
			if e.Binding == "" {
				continue
			}
			vs, ok := valueSets[strings.SplitN(e.Binding, "|", 2)[0]]
			if !ok {
				continue
			}
			codes := map[string][]string{}
			for _, s := range vs.Systems {
				for _, c := range s.Codes {
					codes[s.URI] = append(codes[s.URI], c.Code)
				}
			}
			m.ValueSets[e.Binding] = codes
		}
	}
	// Bindings whose value set cannot be expanded here (grammars such as
	// mime types or UCUM) are dropped: they cannot be checked by listing.
	for name, t := range m.Types {
		for i := range t.Elements {
			if _, ok := m.ValueSets[t.Elements[i].Binding]; !ok {
				t.Elements[i].Binding = ""
			}
		}
		m.Types[name] = t
	}
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(data, '\n'), 0o644)
}

// addType records a type and, recursively, its backbone elements as types of
// their own named by path ("MedicationRequest.dispenseRequest").
func addType(types map[string]typeDef, name, kind string, props []sourceProperty) {
	def := typeDef{Kind: kind}
	for _, p := range props {
		if strings.HasPrefix(p.Name, "_") {
			continue // the primitive extension twin; implied by the element
		}
		e := element{
			Name:     p.Name,
			Type:     p.Type,
			Choice:   strings.TrimSuffix(p.Choice, "[x]"),
			Array:    p.Multiple,
			Required: p.Required,
		}
		if p.Strength == "required" {
			e.Binding = p.ValueSet
		}
		for _, t := range p.Targets {
			e.Targets = append(e.Targets, strings.TrimPrefix(t, "http://hl7.org/fhir/StructureDefinition/"))
		}
		if p.Type == "Quantity" && simpleQuantities[name+"."+p.Name] {
			e.Type = "SimpleQuantity"
		}
		if p.Type == "Reference" && len(e.Targets) == 0 {
			e.Targets = missingTargets[name+"."+p.Name]
		}
		switch {
		case len(p.Properties) > 0:
			e.Type = name + "." + p.Name
			addType(types, e.Type, "backbone", p.Properties)
		case strings.HasPrefix(p.Type, "#"):
			e.Type = strings.TrimPrefix(p.Type, "#")
		}
		def.Elements = append(def.Elements, e)
	}
	types[name] = def
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
