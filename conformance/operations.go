package conformance

import (
	"bytes"
	"embed"
	"encoding/json"
	"strings"
)

// OperationBase is the canonical base of the OperationDefinitions of this
// server's own operations; GET /OperationDefinition/{name} serves each.
const OperationBase = "https://infusion.example.org/fhir/OperationDefinition/"

//go:embed operations/*.json
var operationFiles embed.FS

// OperationDefinition returns the OperationDefinition (JSON) of one of this
// server's own operations, by name; false when it has none.
func OperationDefinition(name string) ([]byte, bool) {
	if strings.ContainsAny(name, "/\\.") {
		return nil, false
	}
	data, err := operationFiles.ReadFile("operations/" + name + ".json")
	if err != nil {
		return nil, false
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return nil, false
	}
	return compact.Bytes(), true
}
