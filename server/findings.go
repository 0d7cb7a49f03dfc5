package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"infusion/fhir"
	"infusion/mapping"
	"infusion/mapping/protocol"
	"infusion/store"
)

// Policy says what the protocol checks do with a write.
type Policy string

// The policies: off runs no checks; warn stores the write and records the
// findings; enforce also refuses (422) a write with an error-level finding.
const (
	PolicyOff     Policy = "off"
	PolicyWarn    Policy = "warn"
	PolicyEnforce Policy = "enforce"
)

// findingType is the type of the resources the checks write.
const findingType = "DetectedIssue"

// checkedTypes are the types whose writes the protocol rules check.
var checkedTypes = map[string]bool{"MedicationRequest": true, "MedicationAdministration": true, "Observation": true}

// findingIssues turns findings into OperationOutcome issues.
func findingIssues(fs []protocol.Finding) []fhir.Issue {
	issues := make([]fhir.Issue, 0, len(fs))
	for _, f := range fs {
		sev := fhir.SeverityInformation
		switch f.Severity {
		case protocol.SeverityError:
			sev = fhir.SeverityError
		case protocol.SeverityWarning:
			sev = fhir.SeverityWarning
		}
		text := f.Detail
		if f.Protocol != nil {
			text += fmt.Sprintf(" [%s, protocol %s %s]", f.Rule, f.Protocol.ID, f.Protocol.Version)
		} else {
			text += " [" + f.Rule + "]"
		}
		issues = append(issues, fhir.Issue{Severity: sev, Code: fhir.IssueBusinessRule, Diagnostics: text, Expression: []string{f.Expression}})
	}
	return issues
}

// checkProtocol runs the rules on a resource about to be written (or
// validated) and returns the findings; under the enforce policy an
// error-level finding is a 422 error.
func (s *Server) checkProtocol(facts protocol.Facts, typ, id string, rows mapping.Rows) ([]protocol.Finding, error) {
	if s.cfg.Protocol == PolicyOff || !checkedTypes[typ] {
		return nil, nil
	}
	fs, err := s.checker.Check(facts, protocol.Subject{Type: typ, ID: id, Rows: rows, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	if s.cfg.Protocol == PolicyEnforce {
		for _, f := range fs {
			if f.Severity == protocol.SeverityError {
				return nil, &fhir.Error{Kind: fhir.KindUnprocessable, Issues: findingIssues(fs)}
			}
		}
	}
	return fs, nil
}

// recordFindings brings the DetectedIssues of a resource's checks up to
// date after it was written as version v: new problems are opened, those
// still there are kept (rewritten if their figures changed), and those gone
// are closed (status cancelled), never deleted.
func (s *Server) recordFindings(w store.Writer, v store.Version, fs []protocol.Finding) error {
	if s.cfg.Protocol == PolicyOff || !checkedTypes[v.Type] {
		return nil
	}
	owner := v.Type + "/" + v.ID
	open, err := w.Facts().OpenFindings(owner)
	if err != nil {
		return err
	}
	byKey := map[string]mapping.Finding{}
	for _, o := range open {
		byKey[o.Key] = o
	}
	for _, f := range fs {
		key := f.Key()
		old, exists := byKey[key]
		delete(byKey, key)
		body := s.detectedIssue(f, key, v)
		id := old.ID
		if !exists {
			id = newID()
		} else if same, err := sameFinding(w, id, body); err != nil {
			return err
		} else if same {
			continue
		}
		if err := s.putFinding(w, id, body, !exists); err != nil {
			return err
		}
	}
	for _, o := range byKey {
		if err := s.closeFinding(w, o.ID); err != nil {
			return err
		}
	}
	return nil
}

// closeFindings closes every open finding of a deleted resource.
func (s *Server) closeFindings(w store.Writer, typ, id string) error {
	if s.cfg.Protocol == PolicyOff || !checkedTypes[typ] {
		return nil
	}
	open, err := w.Facts().OpenFindings(typ + "/" + id)
	if err != nil {
		return err
	}
	for _, o := range open {
		if err := s.closeFinding(w, o.ID); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) closeFinding(w store.Writer, id string) error {
	cur, err := w.Read(findingType, id)
	if err != nil {
		return err
	}
	var tree map[string]any
	if err := json.Unmarshal(cur.Body, &tree); err != nil {
		return fmt.Errorf("closing DetectedIssue/%s: %w", id, err)
	}
	tree["status"] = "cancelled"
	body, err := fhir.Marshal(tree)
	if err != nil {
		return err
	}
	return s.putFinding(w, id, body, false)
}

// sameFinding reports whether the stored finding says what body says.
func sameFinding(w store.Writer, id string, body []byte) (bool, error) {
	cur, err := w.Read(findingType, id)
	if err != nil {
		return false, err
	}
	type content struct {
		Severity string          `json:"severity"`
		Detail   string          `json:"detail"`
		Evidence json.RawMessage `json:"evidence"`
		Patient  json.RawMessage `json:"patient"`
	}
	var a, b content
	if json.Unmarshal(cur.Body, &a) != nil || json.Unmarshal(body, &b) != nil {
		return false, nil
	}
	return a.Severity == b.Severity && a.Detail == b.Detail && string(a.Evidence) == string(b.Evidence) &&
		string(a.Patient) == string(b.Patient), nil
}

func (s *Server) putFinding(w store.Writer, id string, body []byte, create bool) error {
	res, err := fhir.Parse(body)
	if err != nil {
		return fmt.Errorf("writing DetectedIssue/%s: %w", id, err)
	}
	st, err := s.stage(findingType, id, res)
	if err != nil {
		return err
	}
	_, _, err = w.Put(store.Put{Type: findingType, ID: id, Create: create, Body: st.body, Rows: st.rows, Index: st.index})
	return err
}

var findingSeverity = map[protocol.Severity]string{
	protocol.SeverityError:       "high",
	protocol.SeverityWarning:     "moderate",
	protocol.SeverityInformation: "low",
}

// detectedIssue renders a finding as a DetectedIssue implicating version v
// of the checked resource.
func (s *Server) detectedIssue(f protocol.Finding, key string, v store.Version) []byte {
	code := map[string]any{"text": f.CodeText}
	if f.Code != "" {
		code["coding"] = []any{map[string]any{"system": protocol.SystemActCode, "code": f.Code, "display": protocol.CodeDisplay[f.Code]}}
	}
	implicated := []any{map[string]any{"reference": fmt.Sprintf("%s/%s/_history/%d", v.Type, v.ID, v.VersionID)}}
	for _, ref := range f.Implicated[1:] {
		implicated = append(implicated, map[string]any{"reference": ref})
	}
	ext := []any{map[string]any{"url": "rule", "valueCode": f.Rule},
		map[string]any{"url": "formularyVersion", "valueString": s.checker.Formulary().Version}}
	di := map[string]any{
		"resourceType":       findingType,
		"identifier":         []any{map[string]any{"system": mapping.FindingKeySystem, "value": key}},
		"status":             "final",
		"code":               code,
		"severity":           findingSeverity[f.Severity],
		"identifiedDateTime": fhir.FormatInstant(v.LastUpdated),
		"author":             map[string]any{"display": "infusion protocol checks"},
		"implicated":         implicated,
		"detail":             f.Detail,
	}
	if f.Patient != "" {
		di["patient"] = map[string]any{"reference": f.Patient}
	}
	if f.Protocol != nil {
		ext = append([]any{map[string]any{"url": "protocol", "valueString": f.Protocol.ID},
			map[string]any{"url": "protocolVersion", "valueString": f.Protocol.Version}}, ext...)
		di["reference"] = f.Protocol.Reference
		if f.Source != "" {
			di["detail"] = f.Detail + " Source: " + f.Source + "."
		}
	}
	di["extension"] = []any{map[string]any{"url": mapping.FindingExtension, "extension": ext}}
	if len(f.Evidence) > 0 {
		var refs []any
		for _, e := range f.Evidence {
			refs = append(refs, map[string]any{"reference": e})
		}
		di["evidence"] = []any{map[string]any{"detail": refs}}
	}
	return mustMarshal(di)
}

// formulary answers GET /$formulary: the active formulary as JSON, with its
// version and checksum.
func (s *Server) formulary(c echo.Context) error {
	f := s.checker.Formulary()
	// Not a FHIR resource: plain JSON.
	return c.JSONBlob(http.StatusOK, mustMarshal(map[string]any{
		"version": f.Version, "checksum": "sha256:" + f.Checksum, "policy": s.cfg.Protocol, "formulary": f}))
}
