package mapping

import (
	"time"

	models "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"infusion/fhir"
)

// The canonical URLs of what this server writes into DetectedIssues.
const (
	// FindingKeySystem is the identifier system of a finding's key: the
	// resource that raised it, the rule and the element. A later version
	// of that resource with the same problem keeps the finding open.
	FindingKeySystem = "https://infusion.example.org/fhir/sid/finding-key"
	// FindingExtension names the protocol, formulary version and rule of a
	// finding (sub-extensions protocol, protocolVersion, formularyVersion,
	// rule).
	FindingExtension = "https://infusion.example.org/fhir/StructureDefinition/protocol-finding"
)

// Finding is one server-written DetectedIssue: what a protocol rule found
// about a resource.
type Finding struct {
	ID    string
	Owner string // "Type/id" of the resource whose check raised it
	// Implicated are the resources the finding is about, "Type/id"
	// (versions dropped); the first is the owner.
	Implicated []string
	Key        string
	Rule       string
	Status     string // final while open, cancelled once closed
	Severity   string // high, moderate, low
	Code       string // the ActCode, or the code's text when none fits
	Patient    string
	Identified time.Time
	Protocol   string
}

// finding maps a DetectedIssue.
func finding(r models.DetectedIssue) *Finding {
	f := &Finding{Status: r.Status.Code(), Patient: patientOf(r.Patient), Identified: parseTime(r.IdentifiedDateTime)}
	if r.Severity != nil {
		f.Severity = r.Severity.Code()
	}
	if r.Code != nil {
		f.Code = first(r.Code).Code
		if f.Code == "" {
			f.Code = deref(r.Code.Text)
		}
	}
	for _, id := range r.Identifier {
		if deref(id.System) == FindingKeySystem {
			f.Key = deref(id.Value)
		}
	}
	for i, ref := range r.Implicated {
		if p := fhir.ParseReference(deref(ref.Reference)); p.Kind == fhir.RefLiteral {
			f.Implicated = append(f.Implicated, p.Type+"/"+p.ID)
			if i == 0 {
				f.Owner = p.Type + "/" + p.ID // the first implicated is the checked resource
			}
		}
	}
	for _, ext := range r.Extension {
		if ext.Url != FindingExtension {
			continue
		}
		for _, sub := range ext.Extension {
			switch sub.Url {
			case "protocol":
				f.Protocol = deref(sub.ValueString)
			case "rule":
				f.Rule = deref(sub.ValueCode)
			}
		}
	}
	return f
}
