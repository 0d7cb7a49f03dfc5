package fhir

import (
	"bytes"
	"encoding/json"
)

// Bundle is a FHIR Bundle as the server writes it. Entry resources are the
// stored JSON, inserted as they are.
type Bundle struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id,omitempty"`
	Meta         *BundleMeta  `json:"meta,omitempty"`
	Type         string       `json:"type"`
	Total        *int         `json:"total,omitempty"`
	Link         []BundleLink `json:"link,omitempty"`
	Entry        []Entry      `json:"entry,omitempty"`
}

// BundleMeta is the meta of a Bundle the server makes.
type BundleMeta struct {
	LastUpdated string `json:"lastUpdated"`
}

// BundleLink is Bundle.link: self, first, next, previous, last.
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// Entry is Bundle.entry.
type Entry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *EntrySearch    `json:"search,omitempty"`
	Request  *EntryRequest   `json:"request,omitempty"`
	Response *EntryResponse  `json:"response,omitempty"`
}

// EntrySearch is Bundle.entry.search: why the entry is in a searchset.
type EntrySearch struct {
	Mode string `json:"mode"` // match or include
}

// EntryRequest is Bundle.entry.request.
type EntryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// EntryResponse is Bundle.entry.response.
type EntryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

// Marshal encodes v as compact JSON without HTML escaping, so that
// narrative XHTML keeps its < and > and raw resources keep their text.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
