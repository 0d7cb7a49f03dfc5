package kit

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// chainLink is a chained search the kit's data supports: the declared
// reference parameter param of the type leads, in pair's matching
// resource, to the run's target (Type/id), which gives the target type's
// declared token parameter targetParam the value value; the pair's other
// resource references no resource of the run with that value.
type chainLink struct {
	param, targetType, targetID, targetParam, value string
	pair                                            searchPair
}

// runResource finds a resource the run created, by its reference Type/id.
func runResource(all []*searchRun, ref string) (map[string]any, bool) {
	t, id, _ := strings.Cut(ref, "/")
	for _, o := range all {
		if o.cr.Type != t {
			continue
		}
		for _, p := range o.pairs {
			switch id {
			case p.matchID:
				return p.match, true
			case p.otherID:
				return p.other, true
			}
		}
	}
	return nil, false
}

// chainable finds, for the declared reference parameter param, a chained
// search the kit's data supports; why says why there is none.
func (s *searchRun) chainable(all []*searchRun, param string) (chainLink, string) {
	typ := s.cr.Type
	why := fmt.Sprintf("the kit's data gives %s no reference to a resource the kit created", param)
	for _, p := range s.pairs {
		refs, _ := s.r.paramValues(typ, param, p.match)
		others, _ := s.r.paramValues(typ, param, p.other)
		for _, ref := range refs {
			target, ok := runResource(all, ref)
			if !ok {
				continue
			}
			rt, rid, _ := strings.Cut(ref, "/")
			// the values the other resource's targets give
			var tparams []string
			for _, o := range all {
				if o.cr.Type != rt {
					continue
				}
				for _, sp := range o.cr.SearchParam {
					if sp.Type == "token" && !strings.HasPrefix(sp.Name, "_") {
						tparams = append(tparams, sp.Name)
					}
				}
			}
			// status and code first, as the simplest
			rank := func(n string) int { return 2 - 2*boolInt(n == "status") - boolInt(n == "code") }
			slices.SortStableFunc(tparams, func(a, b string) int { return rank(a) - rank(b) })
			if len(tparams) == 0 {
				why = fmt.Sprintf("%s leads to %s, which declares no token search parameter", param, ref)
				continue
			}
			for _, tp := range tparams {
				mv, _ := s.r.paramValues(rt, tp, target)
				var ov []string
				for _, o := range others {
					if res, ok := runResource(all, o); ok && strings.HasPrefix(o, rt+"/") {
						v, _ := s.r.paramValues(rt, tp, res)
						ov = append(ov, v...)
					}
				}
				if v, ok := distinct("token", mv, ov); ok {
					return chainLink{param: param, targetType: rt, targetID: rid, targetParam: tp, value: v, pair: p}, ""
				}
			}
			why = fmt.Sprintf("%s leads to %s, but no declared token parameter of %s has a value there that the other resource's reference does not lead to", param, ref, rt)
		}
	}
	return chainLink{}, why
}

// chainChecks runs search.chain.<param> for each declared reference
// parameter of the type that leads to a resource the run created.
func (s *searchRun) chainChecks(ctx context.Context, all []*searchRun) {
	typ := s.cr.Type
	refs, ran := 0, false
	for _, sp := range s.cr.SearchParam {
		if sp.Type != "reference" {
			continue
		}
		refs++
		link, why := s.chainable(all, sp.Name)
		if why != "" {
			continue
		}
		ran = true
		c := s.begin("search.chain."+sp.Name, "a chained search "+sp.Name+"."+link.targetParam+" (and "+sp.Name+":"+link.targetType+"."+link.targetParam+
			") finds the resource whose reference leads to a match and not the other", Should, "#chaining")
		ok := true
		for _, key := range []string{sp.Name + "." + link.targetParam, sp.Name + ":" + link.targetType + "." + link.targetParam} {
			path := s.query(key, link.value)
			b, resp, problem := c.search(ctx, http.MethodGet, path, nil)
			if text := strings.ToLower(outcomeText(resp)); problem != "" && resp.status == http.StatusBadRequest &&
				strings.Contains(text, "chain") && strings.Contains(text, "support") {
				c.skip("the server does not support chaining: GET %s answered 400: %s", path, outcomeText(resp))
				ok = false
				break
			}
			claim := fmt.Sprintf("%s/%s references %s/%s, whose %s is %s", typ, link.pair.matchID, link.targetType, link.targetID, link.targetParam, link.value)
			switch {
			case problem != "":
				c.fail("%s; the server answered: %s", claim, problem)
			case !b.has(typ, link.pair.matchID):
				c.fail("%s; the server answered GET %s without %s/%s", claim, path, typ, link.pair.matchID)
			case b.has(typ, link.pair.otherID):
				c.fail("%s; the server answered GET %s with %s/%s, built not to match: its %s leads to no %s whose %s is %s",
					claim, path, typ, link.pair.otherID, sp.Name, link.targetType, link.targetParam, link.value)
			default:
				continue
			}
			ok = false
			break
		}
		if ok {
			c.pass()
		}
	}
	if !ran {
		c := s.begin("search.chain", "a chained search on a declared reference parameter finds the resource whose reference leads to a match", Should, "#chaining")
		switch {
		case refs == 0:
			c.skip("the CapabilityStatement declares no reference parameter for %s", typ)
		default:
			c.skip("no declared reference parameter of %s leads to a resource the kit created (it creates only %s)", typ, strings.Join(s.r.createdTypes(), ", "))
		}
	}
}

// outcomeText joins the diagnostics and details.text of the issues of
// the OperationOutcome in the response ("" when it is not one).
func outcomeText(resp response) string {
	if resp.res == nil || resp.res.Type != "OperationOutcome" {
		return ""
	}
	var out []string
	issues, _ := resp.res.Tree["issue"].([]any)
	for _, is := range issues {
		m, _ := is.(map[string]any)
		if d, _ := m["diagnostics"].(string); d != "" {
			out = append(out, d)
		}
		if det, _ := m["details"].(map[string]any); det != nil {
			if t, _ := det["text"].(string); t != "" {
				out = append(out, t)
			}
		}
	}
	return strings.Join(out, "; ")
}
