// Package conformance describes what the server can do as a FHIR
// CapabilityStatement, built from the routes the server really serves.
package conformance

import (
	"slices"
	"strings"
	"time"

	"infusion/fhir"
)

// Interaction codes of CapabilityStatement.rest.resource.interaction and
// rest.interaction (http://hl7.org/fhir/restful-interaction).
const (
	Read            = "read"
	VRead           = "vread"
	Update          = "update"
	Delete          = "delete"
	Patch           = "patch"
	HistoryInstance = "history-instance"
	HistoryType     = "history-type"
	Create          = "create"
	SearchType      = "search-type"
	SearchSystem    = "search-system"
	Transaction     = "transaction"
	Batch           = "batch"
	HistorySystem   = "history-system"
)

// Description is what the server reports about itself.
type Description struct {
	SystemSearchParams []SearchParam // the parameters of a search across types
	Compartments       []string      // canonical URLs of the compartments searchable
	Software           string
	Version            string
	BaseURL            string
	Date               time.Time // when the server started
	Resources          []Resource
	System             []string // system-level interactions
	Operations         []string // system-level operations, e.g. formulary
	Description        string
	// Documentation describes the server's behaviour beyond the spec: the
	// protocol checks' policy and formulary version.
	Documentation string
}

// Resource is one resource type the server serves, with its interactions
// and search parameters.
type Resource struct {
	Type              string
	Interactions      []string
	SearchParams      []SearchParam
	SearchInclude     []string
	SearchRevInclude  []string
	ConditionalCreate bool
	ConditionalUpdate bool
	ConditionalDelete string   // "not-supported", "single" or "multiple"
	Operations        []string // the names of the operations the type supports, e.g. validate
}

// SearchParam is a search parameter a resource type supports.
type SearchParam struct {
	Name          string `json:"name"`
	Definition    string `json:"definition,omitempty"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}

// CapabilityStatement is the R4 resource, with the elements this server uses.
type CapabilityStatement struct {
	ResourceType   string         `json:"resourceType"`
	Status         string         `json:"status"`
	Date           string         `json:"date"`
	Publisher      string         `json:"publisher,omitempty"`
	Kind           string         `json:"kind"`
	Software       software       `json:"software"`
	Implementation implementation `json:"implementation"`
	FHIRVersion    string         `json:"fhirVersion"`
	Format         []string       `json:"format"`
	Rest           []rest         `json:"rest"`
}

type software struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

type implementation struct {
	Description string `json:"description"`
	URL         string `json:"url,omitempty"`
}

type rest struct {
	Mode          string        `json:"mode"`
	Documentation string        `json:"documentation,omitempty"`
	Resource      []resource    `json:"resource"`
	Interaction   []interaction `json:"interaction,omitempty"`
	SearchParam   []SearchParam `json:"searchParam,omitempty"`
	Compartment   []string      `json:"compartment,omitempty"`
	Operation     []operation   `json:"operation,omitempty"`
}

type resource struct {
	Type              string        `json:"type"`
	Profile           string        `json:"profile"`
	Interaction       []interaction `json:"interaction,omitempty"`
	Versioning        string        `json:"versioning,omitempty"`
	ReadHistory       bool          `json:"readHistory"`
	UpdateCreate      bool          `json:"updateCreate"`
	ConditionalCreate bool          `json:"conditionalCreate"`
	ConditionalUpdate bool          `json:"conditionalUpdate"`
	ConditionalDelete string        `json:"conditionalDelete"`
	SearchInclude     []string      `json:"searchInclude,omitempty"`
	SearchRevInclude  []string      `json:"searchRevInclude,omitempty"`
	SearchParam       []SearchParam `json:"searchParam,omitempty"`
	Operation         []operation   `json:"operation,omitempty"`
}

type operation struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

// BulkDataBase is the canonical base of the Bulk Data Access IG's
// OperationDefinitions.
const BulkDataBase = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"

// definition returns the canonical URL of the definition of an operation
// of a type ("" at the system level): the specification's for $validate,
// the Bulk Data IG's for $export, this server's for its own.
func definition(typ, name string) string {
	switch {
	case name == "validate":
		return "http://hl7.org/fhir/OperationDefinition/Resource-validate"
	case name == "export" && typ == "":
		return BulkDataBase + "export"
	case name == "export":
		return BulkDataBase + strings.ToLower(typ) + "-export"
	}
	return OperationBase + name
}

type interaction struct {
	Code string `json:"code"`
}

// Capability builds the CapabilityStatement of d: FHIR 4.0.1, JSON only,
// versioned updates, history readable, and updates that may create.
func Capability(d Description) CapabilityStatement {
	cs := CapabilityStatement{
		ResourceType:   "CapabilityStatement",
		Status:         "active",
		Date:           fhir.FormatInstant(d.Date),
		Kind:           "instance",
		Software:       software{Name: d.Software, Version: d.Version},
		Implementation: implementation{Description: d.Description, URL: d.BaseURL},
		FHIRVersion:    "4.0.1",
		Format:         []string{"json"},
	}
	r := rest{Mode: "server", Resource: []resource{}, Documentation: d.Documentation}
	for _, res := range d.Resources {
		rr := resource{
			Type:              res.Type,
			Profile:           "http://hl7.org/fhir/StructureDefinition/" + res.Type,
			ReadHistory:       slices.Contains(res.Interactions, VRead),
			UpdateCreate:      slices.Contains(res.Interactions, Update),
			SearchInclude:     res.SearchInclude,
			SearchRevInclude:  res.SearchRevInclude,
			SearchParam:       res.SearchParams,
			ConditionalCreate: res.ConditionalCreate,
			ConditionalUpdate: res.ConditionalUpdate,
			ConditionalDelete: res.ConditionalDelete,
		}
		if rr.ConditionalDelete == "" {
			rr.ConditionalDelete = "not-supported"
		}
		if len(res.Interactions) > 0 {
			rr.Versioning = "versioned-update"
		}
		for _, name := range res.Operations {
			rr.Operation = append(rr.Operation, operation{Name: name, Definition: definition(res.Type, name)})
		}
		for _, code := range res.Interactions {
			rr.Interaction = append(rr.Interaction, interaction{Code: code})
		}
		r.Resource = append(r.Resource, rr)
	}
	for _, code := range d.System {
		r.Interaction = append(r.Interaction, interaction{Code: code})
	}
	for _, name := range d.Operations {
		r.Operation = append(r.Operation, operation{Name: name, Definition: definition("", name)})
	}
	r.SearchParam = d.SystemSearchParams
	r.Compartment = d.Compartments
	cs.Rest = []rest{r}
	return cs
}
