package search

// definitions are the R4 (4.0.1) search parameters of the resource types
// this server can store, and those of every resource, as HL7 publishes them
// (search-parameters.json of the R4 definitions): the name, the type, the
// canonical URL, the FHIRPath expression (the part for the base type), the
// reference targets and, for composites, the component parameters. Indexing,
// query parsing, the CapabilityStatement and the README's list all derive
// from this one table.
var definitions = []Definition{
	{Base: "Resource", Name: "_id", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Resource-id", Expression: "Resource.id"},
	{Base: "Resource", Name: "_lastUpdated", Type: TypeDate, URL: "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated", Expression: "Resource.meta.lastUpdated"},
	{Base: "Resource", Name: "_profile", Type: TypeURI, URL: "http://hl7.org/fhir/SearchParameter/Resource-profile", Expression: "Resource.meta.profile"},
	{Base: "Resource", Name: "_security", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Resource-security", Expression: "Resource.meta.security"},
	{Base: "Resource", Name: "_source", Type: TypeURI, URL: "http://hl7.org/fhir/SearchParameter/Resource-source", Expression: "Resource.meta.source"},
	{Base: "Resource", Name: "_tag", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Resource-tag", Expression: "Resource.meta.tag"},
	{Base: "MedicationRequest", Name: "code", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/clinical-code", Expression: "(MedicationRequest.medication.ofType(CodeableConcept))"},
	{Base: "MedicationRequest", Name: "identifier", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/clinical-identifier", Expression: "MedicationRequest.identifier"},
	{Base: "MedicationRequest", Name: "patient", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/clinical-patient", Expression: "MedicationRequest.subject.where(resolve() is Patient)", Targets: []string{"Patient"}},
	{Base: "MedicationRequest", Name: "medication", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/medications-medication", Expression: "(MedicationRequest.medication.ofType(Reference))", Targets: []string{"Medication"}},
	{Base: "MedicationRequest", Name: "status", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/medications-status", Expression: "MedicationRequest.status"},
	{Base: "MedicationRequest", Name: "authoredon", Type: TypeDate, URL: "http://hl7.org/fhir/SearchParameter/MedicationRequest-authoredon", Expression: "MedicationRequest.authoredOn"},
	{Base: "MedicationRequest", Name: "category", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/MedicationRequest-category", Expression: "MedicationRequest.category"},
	{Base: "MedicationRequest", Name: "date", Type: TypeDate, URL: "http://hl7.org/fhir/SearchParameter/medications-date", Expression: "MedicationRequest.dosageInstruction.timing.event"},
	{Base: "MedicationRequest", Name: "encounter", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/medications-encounter", Expression: "MedicationRequest.encounter", Targets: []string{"Encounter"}},
	{Base: "MedicationRequest", Name: "intended-dispenser", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/MedicationRequest-intended-dispenser", Expression: "MedicationRequest.dispenseRequest.performer", Targets: []string{"Organization"}},
	{Base: "MedicationRequest", Name: "intended-performer", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/MedicationRequest-intended-performer", Expression: "MedicationRequest.performer", Targets: []string{"Practitioner", "Organization", "CareTeam", "Device", "Patient", "PractitionerRole", "RelatedPerson"}},
	{Base: "MedicationRequest", Name: "intended-performertype", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/MedicationRequest-intended-performertype", Expression: "MedicationRequest.performerType"},
	{Base: "MedicationRequest", Name: "intent", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/MedicationRequest-intent", Expression: "MedicationRequest.intent"},
	{Base: "MedicationRequest", Name: "priority", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/MedicationRequest-priority", Expression: "MedicationRequest.priority"},
	{Base: "MedicationRequest", Name: "requester", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/MedicationRequest-requester", Expression: "MedicationRequest.requester", Targets: []string{"Practitioner", "Organization", "Device", "Patient", "PractitionerRole", "RelatedPerson"}},
	{Base: "MedicationRequest", Name: "subject", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/MedicationRequest-subject", Expression: "MedicationRequest.subject", Targets: []string{"Group", "Patient"}},
	{Base: "MedicationAdministration", Name: "code", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/clinical-code", Expression: "(MedicationAdministration.medication.ofType(CodeableConcept))"},
	{Base: "MedicationAdministration", Name: "identifier", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/clinical-identifier", Expression: "MedicationAdministration.identifier"},
	{Base: "MedicationAdministration", Name: "patient", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/clinical-patient", Expression: "MedicationAdministration.subject.where(resolve() is Patient)", Targets: []string{"Patient"}},
	{Base: "MedicationAdministration", Name: "context", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/MedicationAdministration-context", Expression: "MedicationAdministration.context", Targets: []string{"EpisodeOfCare", "Encounter"}},
	{Base: "MedicationAdministration", Name: "device", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/MedicationAdministration-device", Expression: "MedicationAdministration.device", Targets: []string{"Device"}},
	{Base: "MedicationAdministration", Name: "effective-time", Type: TypeDate, URL: "http://hl7.org/fhir/SearchParameter/MedicationAdministration-effective-time", Expression: "MedicationAdministration.effective"},
	{Base: "MedicationAdministration", Name: "medication", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/medications-medication", Expression: "(MedicationAdministration.medication.ofType(Reference))", Targets: []string{"Medication"}},
	{Base: "MedicationAdministration", Name: "performer", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/MedicationAdministration-performer", Expression: "MedicationAdministration.performer.actor", Targets: []string{"Practitioner", "Device", "Patient", "PractitionerRole", "RelatedPerson"}},
	{Base: "MedicationAdministration", Name: "reason-given", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/MedicationAdministration-reason-given", Expression: "MedicationAdministration.reasonCode"},
	{Base: "MedicationAdministration", Name: "reason-not-given", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/MedicationAdministration-reason-not-given", Expression: "MedicationAdministration.statusReason"},
	{Base: "MedicationAdministration", Name: "request", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/MedicationAdministration-request", Expression: "MedicationAdministration.request", Targets: []string{"MedicationRequest"}},
	{Base: "MedicationAdministration", Name: "status", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/medications-status", Expression: "MedicationAdministration.status"},
	{Base: "MedicationAdministration", Name: "subject", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/MedicationAdministration-subject", Expression: "MedicationAdministration.subject", Targets: []string{"Group", "Patient"}},
	{Base: "Observation", Name: "code", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/clinical-code", Expression: "Observation.code"},
	{Base: "Observation", Name: "date", Type: TypeDate, URL: "http://hl7.org/fhir/SearchParameter/clinical-date", Expression: "Observation.effective"},
	{Base: "Observation", Name: "identifier", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/clinical-identifier", Expression: "Observation.identifier"},
	{Base: "Observation", Name: "patient", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/clinical-patient", Expression: "Observation.subject.where(resolve() is Patient)", Targets: []string{"Patient"}},
	{Base: "Observation", Name: "encounter", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/clinical-encounter", Expression: "Observation.encounter", Targets: []string{"Encounter", "EpisodeOfCare"}},
	{Base: "Observation", Name: "based-on", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/Observation-based-on", Expression: "Observation.basedOn", Targets: []string{"CarePlan", "MedicationRequest", "NutritionOrder", "DeviceRequest", "ServiceRequest", "ImmunizationRecommendation"}},
	{Base: "Observation", Name: "category", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-category", Expression: "Observation.category"},
	{Base: "Observation", Name: "combo-code", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-combo-code", Expression: "Observation.code | Observation.component.code"},
	{Base: "Observation", Name: "combo-data-absent-reason", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-combo-data-absent-reason", Expression: "Observation.dataAbsentReason | Observation.component.dataAbsentReason"},
	{Base: "Observation", Name: "combo-value-concept", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-combo-value-concept", Expression: "(Observation.value.ofType(CodeableConcept)) | (Observation.component.value.ofType(CodeableConcept))"},
	{Base: "Observation", Name: "combo-value-quantity", Type: TypeQuantity, URL: "http://hl7.org/fhir/SearchParameter/Observation-combo-value-quantity", Expression: "(Observation.value.ofType(Quantity)) | (Observation.value.ofType(SampledData)) | (Observation.component.value.ofType(Quantity)) | (Observation.component.value.ofType(SampledData))"},
	{Base: "Observation", Name: "component-code", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-component-code", Expression: "Observation.component.code"},
	{Base: "Observation", Name: "component-data-absent-reason", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-component-data-absent-reason", Expression: "Observation.component.dataAbsentReason"},
	{Base: "Observation", Name: "component-value-concept", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-component-value-concept", Expression: "(Observation.component.value.ofType(CodeableConcept))"},
	{Base: "Observation", Name: "component-value-quantity", Type: TypeQuantity, URL: "http://hl7.org/fhir/SearchParameter/Observation-component-value-quantity", Expression: "(Observation.component.value.ofType(Quantity)) | (Observation.component.value.ofType(SampledData))"},
	{Base: "Observation", Name: "data-absent-reason", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-data-absent-reason", Expression: "Observation.dataAbsentReason"},
	{Base: "Observation", Name: "derived-from", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/Observation-derived-from", Expression: "Observation.derivedFrom", Targets: []string{"Media", "Observation", "ImagingStudy", "MolecularSequence", "QuestionnaireResponse", "DocumentReference"}},
	{Base: "Observation", Name: "device", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/Observation-device", Expression: "Observation.device", Targets: []string{"Device", "DeviceMetric"}},
	{Base: "Observation", Name: "focus", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/Observation-focus", Expression: "Observation.focus", Targets: []string{"Resource"}},
	{Base: "Observation", Name: "has-member", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/Observation-has-member", Expression: "Observation.hasMember", Targets: []string{"Observation", "MolecularSequence", "QuestionnaireResponse"}},
	{Base: "Observation", Name: "method", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-method", Expression: "Observation.method"},
	{Base: "Observation", Name: "part-of", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/Observation-part-of", Expression: "Observation.partOf", Targets: []string{"Immunization", "MedicationDispense", "MedicationAdministration", "Procedure", "ImagingStudy", "MedicationStatement"}},
	{Base: "Observation", Name: "performer", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/Observation-performer", Expression: "Observation.performer", Targets: []string{"Practitioner", "Organization", "CareTeam", "Patient", "PractitionerRole", "RelatedPerson"}},
	{Base: "Observation", Name: "specimen", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/Observation-specimen", Expression: "Observation.specimen", Targets: []string{"Specimen"}},
	{Base: "Observation", Name: "status", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-status", Expression: "Observation.status"},
	{Base: "Observation", Name: "subject", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/Observation-subject", Expression: "Observation.subject", Targets: []string{"Group", "Device", "Patient", "Location"}},
	{Base: "Observation", Name: "value-concept", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/Observation-value-concept", Expression: "(Observation.value.ofType(CodeableConcept))"},
	{Base: "Observation", Name: "value-date", Type: TypeDate, URL: "http://hl7.org/fhir/SearchParameter/Observation-value-date", Expression: "(Observation.value.ofType(dateTime)) | (Observation.value.ofType(Period))"},
	{Base: "Observation", Name: "value-quantity", Type: TypeQuantity, URL: "http://hl7.org/fhir/SearchParameter/Observation-value-quantity", Expression: "(Observation.value.ofType(Quantity)) | (Observation.value.ofType(SampledData))"},
	{Base: "Observation", Name: "value-string", Type: TypeString, URL: "http://hl7.org/fhir/SearchParameter/Observation-value-string", Expression: "(Observation.value.ofType(string)) | (Observation.value.ofType(CodeableConcept)).text"},
	{Base: "Observation", Name: "code-value-concept", Type: TypeComposite, URL: "http://hl7.org/fhir/SearchParameter/Observation-code-value-concept", Expression: "Observation", Components: []string{"code", "value-concept"}},
	{Base: "Observation", Name: "code-value-date", Type: TypeComposite, URL: "http://hl7.org/fhir/SearchParameter/Observation-code-value-date", Expression: "Observation", Components: []string{"code", "value-date"}},
	{Base: "Observation", Name: "code-value-quantity", Type: TypeComposite, URL: "http://hl7.org/fhir/SearchParameter/Observation-code-value-quantity", Expression: "Observation", Components: []string{"code", "value-quantity"}},
	{Base: "Observation", Name: "code-value-string", Type: TypeComposite, URL: "http://hl7.org/fhir/SearchParameter/Observation-code-value-string", Expression: "Observation", Components: []string{"code", "value-string"}},
	{Base: "Observation", Name: "combo-code-value-concept", Type: TypeComposite, URL: "http://hl7.org/fhir/SearchParameter/Observation-combo-code-value-concept", Expression: "Observation | Observation.component", Components: []string{"combo-code", "combo-value-concept"}},
	{Base: "Observation", Name: "combo-code-value-quantity", Type: TypeComposite, URL: "http://hl7.org/fhir/SearchParameter/Observation-combo-code-value-quantity", Expression: "Observation | Observation.component", Components: []string{"combo-code", "combo-value-quantity"}},
	{Base: "Observation", Name: "component-code-value-concept", Type: TypeComposite, URL: "http://hl7.org/fhir/SearchParameter/Observation-component-code-value-concept", Expression: "Observation.component", Components: []string{"component-code", "component-value-concept"}},
	{Base: "Observation", Name: "component-code-value-quantity", Type: TypeComposite, URL: "http://hl7.org/fhir/SearchParameter/Observation-component-code-value-quantity", Expression: "Observation.component", Components: []string{"component-code", "component-value-quantity"}},
	{Base: "DetectedIssue", Name: "identifier", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/clinical-identifier", Expression: "DetectedIssue.identifier"},
	{Base: "DetectedIssue", Name: "patient", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/clinical-patient", Expression: "DetectedIssue.patient", Targets: []string{"Patient"}},
	{Base: "DetectedIssue", Name: "author", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/DetectedIssue-author", Expression: "DetectedIssue.author", Targets: []string{"Practitioner", "Device", "PractitionerRole"}},
	{Base: "DetectedIssue", Name: "code", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/DetectedIssue-code", Expression: "DetectedIssue.code"},
	{Base: "DetectedIssue", Name: "identified", Type: TypeDate, URL: "http://hl7.org/fhir/SearchParameter/DetectedIssue-identified", Expression: "DetectedIssue.identified"},
	{Base: "DetectedIssue", Name: "implicated", Type: TypeReference, URL: "http://hl7.org/fhir/SearchParameter/DetectedIssue-implicated", Expression: "DetectedIssue.implicated", Targets: []string{"Resource"}},
	{Base: "DetectedIssue", Name: "status", Type: TypeToken, URL: "http://hl7.org/fhir/SearchParameter/DetectedIssue-status", Expression: "DetectedIssue.status"},
}

// patientCompartment lists, for each type, the parameters that put a
// resource in a Patient's compartment (R4 CompartmentDefinition patient).
var patientCompartment = map[string][]string{
	"MedicationRequest":        {"subject"},
	"MedicationAdministration": {"patient", "performer", "subject"},
	"Observation":              {"subject", "performer"},
	"DetectedIssue":            {"patient"},
}

// summaryElements are the top-level elements marked isSummary in the R4
// StructureDefinitions (choice elements by their name without [x]), and
// mandatoryElements those with a minimum cardinality of 1: _summary=true
// keeps the first, _summary=text keeps text and the second.
var (
	summaryElements = map[string][]string{
		"MedicationRequest": {"id", "meta", "implicitRules", "status", "intent", "priority", "doNotPerform", "reported",
			"medication", "subject", "authoredOn", "requester", "performerType", "instantiatesCanonical", "instantiatesUri",
			"basedOn", "groupIdentifier"},
		"MedicationAdministration": {"id", "meta", "implicitRules", "instantiates", "partOf", "status", "medication",
			"subject", "effective", "performer"},
		"Observation": {"id", "meta", "implicitRules", "identifier", "basedOn", "partOf", "status", "code", "subject",
			"focus", "encounter", "effective", "issued", "performer", "value", "hasMember", "derivedFrom", "component"},
		"DetectedIssue": {"id", "meta", "implicitRules", "identifier", "status", "code", "severity", "patient",
			"identified", "author", "implicated"},
	}
	mandatoryElements = map[string][]string{
		"MedicationRequest":        {"status", "intent", "medication", "subject"},
		"MedicationAdministration": {"status", "medication", "subject", "effective"},
		"Observation":              {"status", "code"},
		"DetectedIssue":            {"status"},
	}
)
