package kit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// errorCase is one bad request of the errors suite: the status codes
// that are right for it, and the level of that expectation.
type errorCase struct {
	id, title, level, spec string
	codes                  []int
	needs                  string // the interaction the case needs declared
	request                func(typ string) (method, path string, body []byte)
	// skip, when set, returns why the case cannot run ("" when it can).
	skip func() string
}

// errorCases lists the errors suite, in order.
func (r *runner) errorCases() []errorCase {
	return []errorCase{
		{
			id: "errors.malformed-json", title: "a create whose body is not JSON answers 400", level: Should,
			spec: specHTTP + "#create", codes: []int{400}, needs: "create",
			request: func(typ string) (string, string, []byte) {
				return http.MethodPost, typ, []byte(`{"resourceType": "` + typ + `", "status": `)
			},
		},
		{
			id: "errors.unknown-element", title: "a create with an element R4 does not define answers 400 or 422", level: Should,
			spec: specHTTP + "#create", codes: []int{400, 422}, needs: "create",
			request: func(typ string) (string, string, []byte) {
				body, _ := r.sample(typ, "", map[string]any{"conformanceKitUnknownElement": true})
				return http.MethodPost, typ, body
			},
		},
		{
			id: "errors.wrong-type", title: "a create with a value of the wrong JSON type (\"status\": 5) answers 400 or 422", level: Should,
			spec: specHTTP + "#create", codes: []int{400, 422}, needs: "create",
			request: func(typ string) (string, string, []byte) {
				return http.MethodPost, typ, r.wrongType(typ)
			},
		},
		{
			id: "errors.oversized-body", title: "a create whose body is larger than the server accepts answers 413 Payload Too Large", level: Should,
			spec: specHTTP + "#create", codes: []int{413}, needs: "create",
			skip: r.oversizedSkip,
			request: func(typ string) (string, string, []byte) {
				return http.MethodPost, typ, r.oversized(typ)
			},
		},
		{
			id: "errors.wrong-resource-type", title: "a create whose resourceType is not the type of the URL answers 400", level: Should,
			spec: specHTTP + "#create", codes: []int{400}, needs: "create",
			request: func(typ string) (string, string, []byte) {
				other := "Patient"
				if typ == other {
					other = "Observation"
				}
				body, _ := r.sample(other, "", nil)
				return http.MethodPost, typ, body
			},
		},
		{
			id: "errors.unknown-id", title: "a read of an id that does not exist answers 404", level: Shall,
			spec: specHTTP + "#read", codes: []int{404}, needs: "read",
			request: func(typ string) (string, string, []byte) {
				return http.MethodGet, typ + "/" + url.PathEscape(r.report.RunID+"-unknown"), nil
			},
		},
		{
			id: "errors.unknown-type", title: "a request for a resource type that does not exist answers 404 or 400", level: Should,
			spec: specHTTP + "#general", codes: []int{404, 400},
			request: func(string) (string, string, []byte) {
				return http.MethodGet, "NotAResourceType/" + url.PathEscape(r.report.RunID), nil
			},
		},
		{
			id: "errors.invalid-search-value", title: "a search with an invalid parameter value answers 400", level: Should,
			spec: specSearch + "#errors", codes: []int{400}, needs: "search-type",
			request: func(typ string) (string, string, []byte) {
				for _, cr := range r.caps.resources() {
					if cr.Type != typ {
						continue
					}
					for _, sp := range cr.SearchParam {
						if sp.Type == "date" && !strings.HasPrefix(sp.Name, "_") {
							return http.MethodGet, typ + "?" + url.QueryEscape(sp.Name) + "=notadate", nil
						}
					}
				}
				return http.MethodGet, typ + "?_count=abc", nil
			},
		},
	}
}

// errorsSuite sends requests that are wrong and checks each answer: the
// right status and a well-formed OperationOutcome.
func (r *runner) errorsSuite(ctx context.Context) {
	for _, ec := range r.errorCases() {
		status := r.begin(ec.id+".status", ec.title, SuiteErrors, "", ec.level, ec.spec)
		outcome := r.begin(ec.id+".outcome", "the error of "+ec.id+" is a well-formed OperationOutcome", SuiteErrors, "", Should, specHTTP+"#update")
		if ec.skip != nil {
			if reason := ec.skip(); reason != "" {
				status.skip("%s", reason)
				outcome.skip("%s", reason)
				continue
			}
		}
		typ := ""
		if ec.needs != "" {
			typ = r.typeWith(ec.needs)
			if typ == "" {
				reason := fmt.Sprintf("the CapabilityStatement declares %s for no resource type the kit has a sample of", ec.needs)
				status.skip("%s", reason)
				outcome.skip("%s", reason)
				continue
			}
		}
		status.check.Resource, outcome.check.Resource = typ, typ
		method, path, body := ec.request(typ)
		resp := status.do(ctx, method, path, nil, body)
		outcome.exchanges, outcome.invalid = status.exchanges, status.invalid
		if resp.err == nil && (resp.status == http.StatusOK || resp.status == http.StatusCreated) && method == http.MethodPost {
			r.trackResponse(resp)
		}
		switch {
		case resp.err != nil:
			status.fail("%v", resp.err)
		case !slices.Contains(ec.codes, resp.status):
			status.fail("%s %s answered %d, not %s", method, path, resp.status, codesText(ec.codes))
		default:
			status.invalid = nil // the outcome check judges the body
			status.pass()
		}
		switch {
		case resp.err != nil:
			outcome.fail("%v", resp.err)
		case resp.res == nil:
			outcome.fail("%s %s answered %d with no OperationOutcome (content type %q, %d bytes)", method, path, resp.status, resp.header.Get("Content-Type"), len(resp.body))
		case resp.res.Type != "OperationOutcome":
			outcome.fail("%s %s answered %d with a %s, not an OperationOutcome", method, path, resp.status, resp.res.Type)
		default:
			issues, _ := resp.res.Tree["issue"].([]any)
			if len(issues) == 0 {
				outcome.fail("the OperationOutcome has no issue")
			} else {
				outcome.pass()
			}
		}
	}
}

// wrongType returns the type's sample with status (or, without one,
// language) set to the number 5: valid JSON, the wrong JSON type.
func (r *runner) wrongType(typ string) []byte {
	body, _ := r.sample(typ, "", nil)
	var res map[string]any
	if json.Unmarshal(body, &res) != nil {
		return body
	}
	if _, ok := res["status"]; ok {
		res["status"] = 5
	} else {
		res["language"] = 5
	}
	out, _ := json.Marshal(res)
	return out
}

// oversizedLocal is the size of the oversized body against a local server
// whose limit the kit was not told: this server's default limit (16 MiB)
// and one more.
const oversizedLocal = 17 << 20

// oversizedSkip says why the oversized body is not sent: the kit sends one
// only when told the server's limit, or to a server on this machine.
func (r *runner) oversizedSkip() string {
	if r.opts.BodyLimit > 0 {
		return ""
	}
	switch r.base.Hostname() {
	case "localhost", "127.0.0.1", "::1":
		return ""
	}
	return fmt.Sprintf("the kit does not know the request body limit of %s and does not send large bodies to a remote server (give -max-body to run this check)", r.base.Host)
}

// oversized returns the type's sample padded with whitespace past the
// server's limit (BodyLimit + 1 MiB, else 17 MiB).
func (r *runner) oversized(typ string) []byte {
	size := int64(oversizedLocal)
	if r.opts.BodyLimit > 0 {
		size = r.opts.BodyLimit + 1<<20
	}
	body, _ := r.sample(typ, "", nil)
	end := bytes.LastIndexByte(body, '}')
	if end < 0 || int64(len(body)) >= size {
		return body
	}
	out := make([]byte, 0, size)
	out = append(out, body[:end]...)
	out = append(out, bytes.Repeat([]byte{' '}, int(size)-len(body))...)
	return append(out, body[end:]...)
}

// typeWith returns the first declared resource type that supports the
// interaction and has a sample, or "".
func (r *runner) typeWith(interaction string) string {
	for _, cr := range r.caps.resources() {
		if _, ok := r.sample(cr.Type, "", nil); ok && cr.supports(interaction) {
			return cr.Type
		}
	}
	return ""
}

// trackResponse records what a request that should have failed created
// anyway, from the resource returned or the Location header, so that the
// cleanup deletes it.
func (r *runner) trackResponse(resp response) {
	if resp.res != nil && resp.res.ID != "" && resp.res.Type != "OperationOutcome" {
		r.track(resp.res.Type, resp.res.ID)
		return
	}
	u, err := r.base.Parse(resp.header.Get("Location"))
	if err != nil || u.Host != r.base.Host {
		return
	}
	rest, ok := strings.CutPrefix(u.Path, strings.TrimRight(r.base.Path, "/")+"/")
	if !ok {
		return
	}
	if parts := strings.Split(rest, "/"); len(parts) >= 2 {
		r.track(parts[0], parts[1])
	}
}

func codesText(codes []int) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = fmt.Sprint(c)
	}
	return strings.Join(s, " or ")
}
