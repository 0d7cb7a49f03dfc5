package fhir

import "fmt"

// IssueSeverity is OperationOutcome.issue.severity.
type IssueSeverity string

// The issue severities of R4 (http://hl7.org/fhir/issue-severity).
const (
	SeverityFatal       IssueSeverity = "fatal"
	SeverityError       IssueSeverity = "error"
	SeverityWarning     IssueSeverity = "warning"
	SeverityInformation IssueSeverity = "information"
)

// IssueType is OperationOutcome.issue.code (http://hl7.org/fhir/issue-type).
type IssueType string

// The issue types this server reports.
const (
	IssueInvalid       IssueType = "invalid"
	IssueStructure     IssueType = "structure"
	IssueRequired      IssueType = "required"
	IssueValue         IssueType = "value"
	IssueInvariant     IssueType = "invariant"
	IssueCodeInvalid   IssueType = "code-invalid"
	IssueNotSupported  IssueType = "not-supported"
	IssueNotFound      IssueType = "not-found"
	IssueTransient     IssueType = "transient"
	IssueDeleted       IssueType = "deleted"
	IssueConflict      IssueType = "conflict"
	IssueDuplicate     IssueType = "duplicate"
	IssueProcessing    IssueType = "processing"
	IssueTooLong       IssueType = "too-long"
	IssueException     IssueType = "exception"
	IssueInformational IssueType = "informational"
	IssueBusinessRule  IssueType = "business-rule"
)

// Issue is one OperationOutcome.issue. Expression holds FHIRPath locations
// such as "MedicationRequest.dosageInstruction[0].timing.repeat.duration".
type Issue struct {
	Severity    IssueSeverity `json:"severity"`
	Code        IssueType     `json:"code"`
	Diagnostics string        `json:"diagnostics,omitempty"`
	Expression  []string      `json:"expression,omitempty"`
}

// OperationOutcome is the FHIR resource that carries issues.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []Issue `json:"issue"`
}

// NewOperationOutcome wraps issues in an OperationOutcome. R4 requires at
// least one issue, so an empty list becomes a single informational "ok".
func NewOperationOutcome(issues ...Issue) OperationOutcome {
	if len(issues) == 0 {
		issues = []Issue{{Severity: SeverityInformation, Code: IssueInformational, Diagnostics: "ok"}}
	}
	return OperationOutcome{ResourceType: "OperationOutcome", Issue: issues}
}

// HasErrors reports whether any issue is an error or fatal.
func HasErrors(issues []Issue) bool {
	for _, is := range issues {
		if is.Severity == SeverityError || is.Severity == SeverityFatal {
			return true
		}
	}
	return false
}

// Kind classifies an Error by what went wrong; the server maps each kind to
// one HTTP status in a single table.
type Kind uint8

// The error kinds. KindInternal is the zero value: an error of unknown kind
// is an internal error.
const (
	KindInternal             Kind = iota // a fault of the server
	KindInvalid                          // the request or resource is malformed or breaks base rules
	KindNotFound                         // no such resource, version or type
	KindGone                             // the resource is deleted
	KindMethodNotAllowed                 // the interaction is not supported on this path
	KindConflict                         // the request conflicts with the current state
	KindPreconditionFailed               // If-Match (or another precondition) does not hold
	KindTooLarge                         // the body is over the limit
	KindUnsupportedMediaType             // the body's content type is not FHIR JSON
	KindNotAcceptable                    // no acceptable response format
	KindUnavailable                      // the server cannot serve now (the database does not answer)
	KindUnprocessable                    // well-formed, but the result breaks the rules (a patch's result)
)

// Error is an error that carries OperationOutcome issues. Err, when set, is
// the underlying cause: it is logged, never shown to the client.
type Error struct {
	Kind   Kind
	Issues []Issue
	Err    error
}

// Errorf returns an Error of kind with one error issue of type code at
// expression (which may be empty).
func Errorf(kind Kind, code IssueType, expression, format string, args ...any) *Error {
	is := Issue{Severity: SeverityError, Code: code, Diagnostics: fmt.Sprintf(format, args...)}
	if expression != "" {
		is.Expression = []string{expression}
	}
	return &Error{Kind: kind, Issues: []Issue{is}}
}

func (e *Error) Error() string {
	msg := "fhir error"
	if len(e.Issues) > 0 {
		msg = e.Issues[0].Diagnostics
		if len(e.Issues[0].Expression) > 0 {
			msg = e.Issues[0].Expression[0] + ": " + msg
		}
		if n := len(e.Issues) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more)", n)
		}
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }
