package kit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Suite names of search.go and bundles.go.
const (
	SuiteSearch  = "search"
	SuiteBundles = "bundles"
)

// bundleRef is a reference from a resource of type From (element Field) to
// a resource of type To, used to test urn:uuid rewriting.
type bundleRef struct {
	From, Field, To string
	list            bool // the element repeats
}

var bundleRefs = []bundleRef{
	{From: "MedicationAdministration", Field: "request", To: "MedicationRequest"},
	{From: "Observation", Field: "basedOn", To: "MedicationRequest", list: true},
	{From: "Observation", Field: "hasMember", To: "Observation", list: true},
}

// bundleDef describes a check of the bundles suite.
type bundleDef struct {
	id, title, level, spec, needs string
}

func bundleDefs() []bundleDef {
	return []bundleDef{
		{"bundles.transaction.status", "a transaction answers 200 OK", Shall, specHTTP + "#transaction", "transaction"},
		{"bundles.transaction.response", "the transaction-response has an entry per request, in order, each 201 with a location", Shall, specHTTP + "#transaction-response", "transaction"},
		{"bundles.transaction.urn-uuid", "a reference to a urn:uuid fullUrl is rewritten to the id the server gave", Shall, specHTTP + "#trules", "transaction"},
		{"bundles.transaction.reject", "a transaction with an invalid entry is rejected with 4xx", Shall, specHTTP + "#transaction", "transaction"},
		{"bundles.transaction.atomic", "a rejected transaction creates nothing, not even its valid entries", Shall, specHTTP + "#transaction", "transaction"},
		{"bundles.batch.status", "a batch answers 200 OK with a batch-response", Shall, specHTTP + "#transaction", "batch"},
		{"bundles.batch.entries", "each entry of a batch-response has its own status, in order: 201 for the valid, 4xx for the invalid", Shall, specHTTP + "#transaction-response", "batch"},
		{"bundles.batch.created", "the valid entry of a batch is created although another entry failed", Shall, specHTTP + "#transaction", "batch"},
	}
}

// bundleResponse is what the kit reads of a transaction- or batch-response.
type bundleResponse struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		Resource map[string]any `json:"resource"`
		Response struct {
			Status   string `json:"status"`
			Location string `json:"location"`
		} `json:"response"`
	} `json:"entry"`
}

func (b bundleResponse) status(i int) string {
	if i >= len(b.Entry) {
		return ""
	}
	return b.Entry[i].Response.Status
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// bundlesRun runs the bundles suite.
type bundlesRun struct {
	r   *runner
	ref bundleRef
	ran map[string]bool
}

func (b *bundlesRun) begin(id string) *checkRun {
	for _, d := range bundleDefs() {
		if d.id == id {
			b.ran[id] = true
			return b.r.begin(d.id, d.title, SuiteBundles, "", d.level, d.spec)
		}
	}
	panic("kit: no bundles check " + id)
}

// skipRest skips, with the reason, every check of the kind not run yet.
func (b *bundlesRun) skipRest(needs, reason string) {
	for _, d := range bundleDefs() {
		if d.needs == needs && !b.ran[d.id] {
			b.begin(d.id).skip("%s", reason)
		}
	}
}

// bundlesSuite checks batch and transaction, when declared.
func (r *runner) bundlesSuite(ctx context.Context) {
	b := &bundlesRun{r: r, ran: map[string]bool{}}
	declared := map[string]bool{}
	for _, rest := range r.caps.Rest {
		if rest.Mode != "server" && rest.Mode != "" {
			continue
		}
		for _, i := range rest.Inter {
			declared[i.Code] = true
		}
	}
	creatable := map[string]bool{}
	for _, cr := range r.caps.resources() {
		if _, ok := r.sample(cr.Type, "", nil); ok && cr.supports("create") {
			creatable[cr.Type] = true
		}
	}
	found := false
	for _, ref := range bundleRefs {
		if creatable[ref.From] && creatable[ref.To] {
			b.ref, found = ref, true
			break
		}
	}
	for _, kind := range []string{"transaction", "batch"} {
		switch {
		case !declared[kind]:
			b.skipRest(kind, fmt.Sprintf("the CapabilityStatement does not declare the interaction %s", kind))
		case !found:
			b.skipRest(kind, "the CapabilityStatement declares create for no pair of types the kit can link in a Bundle (e.g. MedicationRequest and MedicationAdministration)")
		case kind == "transaction":
			b.transaction(ctx)
		default:
			b.batch(ctx)
		}
	}
}

// entries builds the two entries: the first a resource of ref.To with a
// urn:uuid fullUrl, the second a resource of ref.From referencing it (or,
// when invalid, a resource of ref.From with an element R4 does not define).
func (b *bundlesRun) entries(label string, invalid bool) (first, second map[string]any, firstIdent string) {
	firstURN := "urn:uuid:" + uuid()
	firstIdent = b.r.report.RunID + "-" + label
	_, res1, _ := b.r.build(b.ref.To, map[string]any{"identifier": []any{map[string]any{"system": IDSystem, "value": firstIdent}}})
	var ref any = map[string]any{"reference": firstURN}
	if b.ref.list {
		ref = []any{ref}
	}
	mods := map[string]any{b.ref.Field: ref}
	if invalid {
		mods["conformanceKitUnknownElement"] = true
	}
	_, res2, _ := b.r.build(b.ref.From, mods)
	first = map[string]any{"fullUrl": firstURN, "resource": res1, "request": map[string]any{"method": "POST", "url": b.ref.To}}
	second = map[string]any{"fullUrl": "urn:uuid:" + uuid(), "resource": res2, "request": map[string]any{"method": "POST", "url": b.ref.From}}
	return first, second, firstIdent
}

func bundleBody(kind string, entries ...map[string]any) []byte {
	e := make([]any, len(entries))
	for i, x := range entries {
		e[i] = x
	}
	body, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": kind, "entry": e})
	return body
}

// post sends a Bundle to the base and reads the answer.
func (b *bundlesRun) post(ctx context.Context, c *checkRun, body []byte) (response, bundleResponse, bool) {
	resp := c.do(ctx, http.MethodPost, "", nil, body)
	var br bundleResponse
	ok := resp.err == nil && resp.res != nil && resp.res.Type == "Bundle" && json.Unmarshal(resp.body, &br) == nil
	if ok {
		for _, e := range br.Entry {
			if t, id := locationID(b.r, e.Response.Location); t != "" {
				b.r.track(t, id)
			}
		}
	}
	return resp, br, ok
}

func (b *bundlesRun) transaction(ctx context.Context) {
	first, second, _ := b.entries("transaction", false)
	c := b.begin("bundles.transaction.status")
	resp, br, isBundle := b.post(ctx, c, bundleBody("transaction", first, second))
	const claim = "CapabilityStatement says the server supports transaction"
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
	case resp.status != http.StatusOK:
		c.fail("%s; the server answered %d", claim, resp.status)
	default:
		c.pass()
	}
	c = b.begin("bundles.transaction.response")
	c.saw(resp)
	types := []string{b.ref.To, b.ref.From}
	ids := make([]string, 2)
	problem := ""
	switch {
	case resp.err != nil:
		problem = resp.err.Error()
	case !isBundle:
		problem = fmt.Sprintf("%s; the server answered %d without a Bundle", claim, resp.status)
	case br.Type != "transaction-response":
		problem = fmt.Sprintf("the Bundle returned is of type %q, not transaction-response", br.Type)
	case len(br.Entry) != 2:
		problem = fmt.Sprintf("the transaction-response has %d entries for 2 requests", len(br.Entry))
	default:
		for i, e := range br.Entry {
			t, id := locationID(b.r, e.Response.Location)
			switch {
			case !strings.HasPrefix(e.Response.Status, "201"):
				problem = fmt.Sprintf("entry %d (a POST of a %s) has the status %q, not 201", i+1, types[i], e.Response.Status)
			case t != types[i] || id == "":
				problem = fmt.Sprintf("entry %d (a POST of a %s) has the location %q", i+1, types[i], e.Response.Location)
			}
			if problem != "" {
				break
			}
			ids[i] = id
		}
	}
	if problem != "" {
		c.fail("%s", problem)
	} else {
		c.pass()
	}

	c = b.begin("bundles.transaction.urn-uuid")
	if ids[0] == "" || ids[1] == "" {
		c.skip("the transaction gave no ids to read back")
	} else {
		got, problem := b.readBack(ctx, c, types[1], ids[1])
		want := types[0] + "/" + ids[0]
		if problem == "" {
			ref := got[b.ref.Field]
			if l, ok := ref.([]any); ok && len(l) > 0 {
				ref = l[0]
			}
			m, _ := ref.(map[string]any)
			s, _ := m["reference"].(string)
			if s != want && s != b.r.base.String()+"/"+want {
				problem = fmt.Sprintf("%s/%s.%s.reference is %q, not %q", types[1], ids[1], b.ref.Field, s, want)
			}
		}
		if problem != "" {
			c.fail("%s", problem)
		} else {
			c.pass()
		}
	}

	// atomicity
	first, second, ident := b.entries("atomic", true)
	c = b.begin("bundles.transaction.reject")
	resp, _, _ = b.post(ctx, c, bundleBody("transaction", first, second))
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
	case resp.status < 400 || resp.status > 499:
		c.fail("a transaction whose second entry has an element R4 does not define answered %d, not 4xx", resp.status)
		b.r.trackResponse(resp)
	default:
		c.pass()
	}
	c = b.begin("bundles.transaction.atomic")
	n, problem := b.countIdent(ctx, c, b.ref.To, ident)
	switch {
	case problem != "":
		c.skip("the kit cannot tell what was created: %s", problem)
	case n > 0:
		c.fail("%s; the server rejected the transaction but created its first entry (%d %s with the identifier %s)", claim, n, b.ref.To, ident)
	default:
		c.pass()
	}
}

func (b *bundlesRun) batch(ctx context.Context) {
	first, second, ident := b.entries("batch", true)
	// the second entry stands alone: it must not reference the first
	res2 := second["resource"].(map[string]any)
	delete(res2, b.ref.Field)
	c := b.begin("bundles.batch.status")
	resp, br, isBundle := b.post(ctx, c, bundleBody("batch", first, second))
	const claim = "CapabilityStatement says the server supports batch"
	switch {
	case resp.err != nil:
		c.fail("%v", resp.err)
	case resp.status != http.StatusOK:
		c.fail("%s; the server answered %d", claim, resp.status)
	case !isBundle || br.Type != "batch-response":
		c.fail("%s; the server answered 200 without a batch-response Bundle", claim)
	default:
		c.pass()
	}
	c = b.begin("bundles.batch.entries")
	c.saw(resp)
	s1, s2 := br.status(0), br.status(1)
	switch {
	case !isBundle:
		c.fail("%s; the server answered %d without a Bundle", claim, resp.status)
	case len(br.Entry) != 2:
		c.fail("the batch-response has %d entries for 2 requests", len(br.Entry))
	case !strings.HasPrefix(s1, "201"):
		c.fail("entry 1 (a valid POST of a %s) has the status %q, not 201", b.ref.To, s1)
	case !strings.HasPrefix(s2, "4"):
		c.fail("entry 2 (a POST of a %s with an element R4 does not define) has the status %q, not 4xx", b.ref.From, s2)
	default:
		c.pass()
	}
	c = b.begin("bundles.batch.created")
	n, problem := b.countIdent(ctx, c, b.ref.To, ident)
	switch {
	case problem != "":
		c.skip("the kit cannot tell what was created: %s", problem)
	case n != 1:
		c.fail("%s; the server created %d %s with the identifier %s, not 1", claim, n, b.ref.To, ident)
	default:
		c.pass()
	}
}

// readBack reads a resource (by read, else by a search on _id).
func (b *bundlesRun) readBack(ctx context.Context, c *checkRun, typ, id string) (map[string]any, string) {
	for _, cr := range b.r.caps.resources() {
		if cr.Type != typ {
			continue
		}
		if cr.supports("read") {
			resp := c.do(ctx, http.MethodGet, typ+"/"+url.PathEscape(id), nil, nil)
			if resp.status != http.StatusOK || resp.res == nil {
				return nil, fmt.Sprintf("GET %s/%s answered %d", typ, id, resp.status)
			}
			return resp.res.Tree, ""
		}
		if cr.supports("search-type") {
			sb, _, problem := c.search(ctx, http.MethodGet, typ+"?_id="+url.QueryEscape(id), nil)
			if i := sb.index(typ, id); problem == "" && i >= 0 {
				return sb.Entry[i].Resource, ""
			}
			return nil, fmt.Sprintf("a search of %s by _id did not return %s", typ, id)
		}
	}
	return nil, fmt.Sprintf("the CapabilityStatement declares neither read nor search-type for %s", typ)
}

// countIdent counts the run's resources of typ with the identifier
// (IDSystem, value), by a search on the run's tag; what it finds is
// tracked for the cleanup.
func (b *bundlesRun) countIdent(ctx context.Context, c *checkRun, typ, value string) (int, string) {
	searchable := false
	for _, cr := range b.r.caps.resources() {
		searchable = searchable || (cr.Type == typ && cr.supports("search-type"))
	}
	if !searchable {
		return 0, fmt.Sprintf("the CapabilityStatement does not declare search-type for %s", typ)
	}
	q := url.Values{"_tag": {TagSystem + "|" + b.r.report.RunID}, "_count": {"100"}}
	sb, _, problem := c.search(ctx, http.MethodGet, typ+"?"+q.Encode(), nil)
	if problem != "" {
		return 0, problem
	}
	n := 0
	for _, e := range sb.Entry {
		if e.Resource["resourceType"] != typ {
			continue
		}
		ids, _ := e.Resource["identifier"].([]any)
		for _, x := range ids {
			m, _ := x.(map[string]any)
			if m["system"] == IDSystem && m["value"] == value {
				n++
				if id, _ := e.Resource["id"].(string); id != "" {
					b.r.track(typ, id)
				}
				break
			}
		}
	}
	return n, ""
}
