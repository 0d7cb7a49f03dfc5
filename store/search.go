package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"infusion/fhir/search"
)

// Compartment restricts a search to the resources that refer to one
// resource through any of the given parameters (R4 compartments), e.g. the
// Patient compartment of Patient/p1.
type Compartment struct {
	Params []*search.Param
	Type   string
	ID     string
}

// SearchRequest is a parsed search and, optionally, a compartment.
type SearchRequest struct {
	Query       *search.Query
	Compartment *Compartment
}

// SearchResult is one page of a search.
type SearchResult struct {
	Matches  []Version
	Included []Version // resources added by _include and _revinclude
	Total    int       // -1 when not counted
	Next     string    // cursor of the next page; "" on the last page
	Previous string    // cursor of the previous page; "" on the first page
}

// probeLimit bounds the rows counted when judging how selective a
// condition is; a condition matching fewer is used to drive the query.
const probeLimit = 2000

// alias is the SQL name of the resources row a condition is about.
type alias string

func (a alias) rid() string         { return string(a) + ".rid" }
func (a alias) typ() string         { return string(a) + ".type" }
func (a alias) id() string          { return string(a) + ".id" }
func (a alias) lastUpdated() string { return string(a) + ".last_updated" }

const outer alias = "r"

// builder accumulates the arguments of one SQL statement. Arguments are
// numbered (?N), so the order in which parts of the statement are built
// does not matter.
type builder struct {
	args []any
	n    int // for unique table aliases
}

func (b *builder) arg(v any) string {
	b.args = append(b.args, v)
	return "?" + strconv.Itoa(len(b.args))
}

func (b *builder) alias(prefix string) string {
	b.n++
	return fmt.Sprintf("%s%d", prefix, b.n)
}

// byRid names an index table with its (rid, param) index forced: a
// condition about one resource must use it, whatever the planner guesses
// about the other columns (without statistics it may prefer an index on
// the value, and read every row of the parameter for each resource).
func byRid(table, alias string) string {
	return table + " " + alias + " INDEXED BY " + table + "_rid"
}

// tableOf is the index table of each parameter type.
var tableOf = map[search.Type]string{
	search.TypeToken:     "search_token",
	search.TypeString:    "search_string",
	search.TypeReference: "search_reference",
	search.TypeDate:      "search_date",
	search.TypeQuantity:  "search_quantity",
	search.TypeNumber:    "search_quantity",
	search.TypeURI:       "search_uri",
}

// Search runs a search and returns one page, its includes, the total and
// the cursors of the neighbouring pages. The query is driven by its most
// selective condition (measured, up to probeLimit rows); without one, the
// resources of the type are walked in order and each condition checked.
func (s *Store) Search(ctx context.Context, req SearchRequest) (SearchResult, error) {
	return runSearch(ctx, s.read, req)
}

// querier runs statements: the read pool, or a write transaction (whose
// reads see its own writes).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// runSearch runs a search through db.
func runSearch(ctx context.Context, db querier, req SearchRequest) (SearchResult, error) {
	q := req.Query
	res := SearchResult{Total: -1}
	driver, selective, err := chooseDriver(ctx, db, req)
	if err != nil {
		return res, err
	}
	cheap := selective
	if !cheap && q.Total == "" && q.Page == "" {
		// Without a selective condition, counting walks the type: cheap
		// when the type is small.
		var b builder
		var ts []string
		for _, t := range q.Types {
			ts = append(ts, b.arg(t))
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM resources WHERE type IN ("+strings.Join(ts, ", ")+
			") AND deleted = 0 LIMIT "+strconv.Itoa(probeLimit)+")", b.args...).Scan(&n); err != nil {
			return res, fmt.Errorf("store: counting: %w", err)
		}
		cheap = n < probeLimit
	}
	// The total is counted when asked for, and otherwise on a first page
	// when it is cheap: a selective driver, or a small type.
	if q.Total == "accurate" || q.Total == "estimate" || q.Total == "" && q.Page == "" && cheap {
		var b builder
		where, err := b.where(req, driver)
		if err != nil {
			return res, err
		}
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM resources r WHERE "+where, b.args...).Scan(&res.Total); err != nil {
			return res, fmt.Errorf("store: counting search results: %w", err)
		}
	}
	if q.Count == 0 || q.Summary == "count" {
		return res, nil
	}
	keys := sortKeys(q.Sort)
	cur, err := decodeCursor(q.Page, len(keys))
	if err != nil {
		return res, err
	}
	backward := cur != nil && cur.Backward
	if !selective && len(keys) == 0 {
		// Walk the resources in order and stop at a page's worth, rather
		// than start from a condition that selects many. (A sorted search
		// must read every match anyway: it starts from the condition.)
		driver = noDriver
	}
	var b builder
	query, err := b.pageQuery(req, driver, keys, cur)
	if err != nil {
		return res, err
	}
	rows, err := db.QueryContext(ctx, query, b.args...)
	if err != nil {
		return res, fmt.Errorf("store: searching: %w", err)
	}
	type row struct {
		v    Version
		keys []any
	}
	var page2 []row
	for rows.Next() {
		var r row
		var lu string
		dest := []any{&r.v.rid, &r.v.Type, &r.v.ID, &r.v.VersionID, &lu, &r.v.Method, &r.v.Body}
		r.keys = make([]any, len(keys))
		for i := range keys {
			dest = append(dest, &r.keys[i])
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return res, fmt.Errorf("store: searching: %w", err)
		}
		if err := finish(&r.v, lu); err != nil {
			rows.Close()
			return res, err
		}
		page2 = append(page2, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("store: searching: %w", err)
	}
	more := len(page2) > q.Count
	if more {
		page2 = page2[:q.Count]
	}
	if backward {
		for i, j := 0, len(page2)-1; i < j; i, j = i+1, j-1 {
			page2[i], page2[j] = page2[j], page2[i]
		}
	}
	for _, r := range page2 {
		res.Matches = append(res.Matches, r.v)
	}
	if len(page2) > 0 {
		first, last := page2[0], page2[len(page2)-1]
		if (!backward && more) || backward {
			res.Next = encodeCursor(cursor{Keys: last.keys, RID: last.v.rid})
		}
		if (backward && more) || (!backward && cur != nil) {
			res.Previous = encodeCursor(cursor{Keys: first.keys, RID: first.v.rid, Backward: true})
		}
	}
	res.Included, err = includes(ctx, db, q, res.Matches)
	return res, err
}

// pageQuery is the statement of one page: the matching rows after the
// cursor in the sort order, one more than _count, with their stored JSON.
func (b *builder) pageQuery(req SearchRequest, driver int, keys []sortKey, cur *cursor) (string, error) {
	backward := cur != nil && cur.Backward
	where, err := b.where(req, driver)
	if err != nil {
		return "", err
	}
	cols := "r.rid AS rid, r.seq AS seq"
	for i, k := range keys {
		cols += fmt.Sprintf(", %s AS s%d", k.expr(b), i)
	}
	page := "SELECT * FROM (SELECT " + cols + " FROM resources r WHERE " + where + ") q"
	if cur != nil {
		page += " WHERE " + keysetCondition(b, keys, cur, backward)
	}
	page += " ORDER BY " + orderBy(keys, backward) + " LIMIT " + b.arg(req.Query.Count+1)
	return "SELECT p.rid, v.type, v.id, v.version, v.last_updated, v.method, v.body" + sortColumns(keys) +
		" FROM (" + page + ") p JOIN resource_versions v ON v.seq = p.seq ORDER BY " + orderBy(keys, backward), nil
}

// Drivers other than a clause (clauses are numbered from 0).
const (
	compartmentClause = -1 // the compartment drives
	noDriver          = -2 // the resources of the type are walked in order
)

// chooseDriver measures, up to probeLimit rows each, how many resources
// each positive condition selects, and returns the most selective one (a
// clause index, or compartmentClause), or noDriver when there is none.
// selective says it selects fewer than probeLimit: worth starting a page
// from; a count starts from any driver.
func chooseDriver(ctx context.Context, db querier, req SearchRequest) (driver int, selective bool, err error) {
	driver = noDriver
	best := math.MaxInt
	try := func(index int, rids string, args []any) error {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM ("+rids+" LIMIT "+strconv.Itoa(probeLimit+1)+")", args...).Scan(&n); err != nil {
			return fmt.Errorf("store: measuring a search condition: %w", err)
		}
		if n < best {
			best, driver = n, index
		}
		return nil
	}
	if c := req.Compartment; c != nil {
		var b builder
		rids := b.compartmentRids(c)
		if err := try(compartmentClause, rids, b.args); err != nil {
			return 0, false, err
		}
	}
	for i, c := range req.Query.Clauses {
		var b builder
		if rids, ok := b.probeRids(c, req.Query.Types); ok {
			if err := try(i, rids, b.args); err != nil {
				return 0, false, err
			}
			if best == 0 {
				break
			}
		}
	}
	return driver, best < probeLimit, nil
}

// where builds the condition of the searched resources: type, not
// deleted, compartment and clauses, the driver among them as the set of
// rids the query starts from.
func (b *builder) where(req SearchRequest, driver int) (string, error) {
	q := req.Query
	types := make([]string, len(q.Types))
	for i, t := range q.Types {
		types[i] = b.arg(t)
	}
	parts := []string{"r.deleted = 0", "r.type IN (" + strings.Join(types, ", ") + ")"}
	if c := req.Compartment; c != nil {
		if driver == compartmentClause {
			parts = append(parts, "r.rid IN ("+b.compartmentRids(c)+")")
		} else {
			var ors []string
			for _, p := range c.Params {
				ors = append(ors, b.refExists(outer, p.Key, search.ReferenceValue{Type: c.Type, ID: c.ID}))
			}
			parts = append(parts, "("+strings.Join(ors, " OR ")+")")
		}
	}
	for i, c := range q.Clauses {
		if i == driver {
			rids, _ := b.rids(c, q.Types)
			parts = append(parts, "r.rid IN ("+rids+")")
			continue
		}
		cond, err := b.match(c, outer, q.Types)
		if err != nil {
			return "", err
		}
		parts = append(parts, cond)
	}
	return strings.Join(parts, " AND "), nil
}

// compartmentRids selects the resources in a compartment.
func (b *builder) compartmentRids(c *Compartment) string {
	var sets []string
	for _, p := range c.Params {
		sets = append(sets, "SELECT rid FROM search_reference WHERE param = "+b.arg(p.Key)+
			" AND target_id = "+b.arg(c.ID)+" AND target_type = "+b.arg(c.Type))
	}
	return strings.Join(sets, " UNION ")
}

// probeRids returns the rids to count to judge how selective a clause is:
// for a chain or _has, those of the innermost condition, which are far
// cheaper to count and select about as many.
func (b *builder) probeRids(c search.Clause, types []string) (string, bool) {
	switch {
	case c.Has != nil:
		if _, ok := b.rids(c, types); !ok {
			return "", false
		}
		b.args = nil
		return b.probeRids(c.Has.Clause, []string{c.Has.Type})
	case c.Chain != nil:
		if _, ok := b.rids(c, types); !ok {
			return "", false
		}
		b.args = nil
		return b.probeRids(c.Chain.Clause, c.Chain.Types)
	}
	return b.rids(c, types)
}

// rids returns a subquery of the rids of the resources a positive clause
// matches, for driving a query; false when the clause cannot drive.
func (b *builder) rids(c search.Clause, types []string) (string, bool) {
	switch {
	case c.Has != nil:
		inner, ok := b.rids(c.Has.Clause, []string{c.Has.Type})
		if !ok {
			return "", false
		}
		a := b.alias("h")
		t := b.alias("t")
		return "SELECT " + t + ".rid FROM search_reference " + a + " JOIN resources " + t + " ON " + t + ".type = " + a +
			".target_type AND " + t + ".id = " + a + ".target_id WHERE " + a + ".param = " + b.arg(c.Has.Ref.Key) +
			" AND " + a + ".rid IN (" + inner + ")", true
	case c.Chain != nil:
		inner, ok := b.rids(c.Chain.Clause, c.Chain.Types)
		if !ok {
			return "", false
		}
		a := b.alias("c")
		t := b.alias("t")
		// CROSS JOIN keeps the order: from the chained resources to the
		// references that point at them.
		return "SELECT " + a + ".rid FROM resources " + t + " CROSS JOIN search_reference " + a + " ON " + a + ".param = " +
			b.arg(c.Param.Key) + " AND " + a + ".target_id = " + t + ".id AND " + a + ".target_type = " + t + ".type WHERE " +
			t + ".rid IN (" + inner + ") AND " + t + ".deleted = 0", true
	case c.Modifier == "not" || c.Modifier == "missing" || len(c.Values) == 0:
		return "", false
	}
	p := c.Param
	if p.Name == "_id" {
		var ids []string
		for _, v := range c.Values {
			ids = append(ids, b.arg(v.Token.Code))
		}
		var ts []string
		for _, t := range types {
			ts = append(ts, b.arg(t))
		}
		return "SELECT rid FROM resources WHERE type IN (" + strings.Join(ts, ", ") + ") AND id IN (" + strings.Join(ids, ", ") +
			") AND deleted = 0", true
	}
	if p.Name == "_lastUpdated" {
		var sets []string
		for _, v := range c.Values {
			u := b.alias("u")
			var ts []string
			for _, t := range types {
				ts = append(ts, b.arg(t))
			}
			sets = append(sets, "SELECT "+u+".rid FROM resources "+u+" WHERE "+u+".type IN ("+strings.Join(ts, ", ")+") AND "+
				u+".deleted = 0 AND "+lastUpdatedCondition(b, alias(u), v))
		}
		return strings.Join(sets, " UNION "), true
	}
	var sets []string
	for _, v := range c.Values {
		table, a, cond, err := b.valueCondition(p, c.Modifier, v)
		if err != nil {
			return "", false
		}
		sets = append(sets, "SELECT "+a+".rid FROM "+table+" "+a+" WHERE "+cond)
	}
	return strings.Join(sets, " UNION "), true
}

// match returns the condition that a resource (at al) satisfies a clause.
func (b *builder) match(c search.Clause, al alias, types []string) (string, error) {
	switch {
	case c.Has != nil:
		a := b.alias("h")
		t := b.alias("t")
		inner, err := b.match(c.Has.Clause, alias(t), []string{c.Has.Type})
		if err != nil {
			return "", err
		}
		return "EXISTS (SELECT 1 FROM search_reference " + a + " JOIN resources " + t + " ON " + t + ".rid = " + a + ".rid WHERE " +
			a + ".param = " + b.arg(c.Has.Ref.Key) + " AND " + a + ".target_type = " + al.typ() + " AND " + a + ".target_id = " + al.id() +
			" AND " + t + ".deleted = 0 AND " + inner + ")", nil
	case c.Chain != nil:
		a := b.alias("c")
		t := b.alias("t")
		inner, err := b.match(c.Chain.Clause, alias(t), c.Chain.Types)
		if err != nil {
			return "", err
		}
		var ts []string
		for _, typ := range c.Chain.Types {
			ts = append(ts, b.arg(typ))
		}
		return "EXISTS (SELECT 1 FROM " + byRid("search_reference", a) + " JOIN resources " + t + " ON " + t + ".type = " + a + ".target_type AND " +
			t + ".id = " + a + ".target_id WHERE " + a + ".rid = " + al.rid() + " AND " + a + ".param = " + b.arg(c.Param.Key) +
			" AND " + t + ".deleted = 0 AND " + t + ".type IN (" + strings.Join(ts, ", ") + ") AND " + inner + ")", nil
	}
	p := c.Param
	if c.Modifier == "missing" {
		table := tableOf[p.Type]
		if table == "" || p.Name == "_id" || p.Name == "_lastUpdated" {
			return "", fmt.Errorf("%w: %s:missing", errUnsupported, p.Name)
		}
		a := b.alias("m")
		exists := "EXISTS (SELECT 1 FROM " + byRid(table, a) + " WHERE " + a + ".rid = " + al.rid() + " AND " + a + ".param = " + b.arg(p.Key) + ")"
		if c.Values[0].Missing {
			return "NOT " + exists, nil
		}
		return exists, nil
	}
	var ors []string
	for _, v := range c.Values {
		switch p.Name {
		case "_id":
			ors = append(ors, al.id()+" = "+b.arg(v.Token.Code))
			continue
		case "_lastUpdated":
			ors = append(ors, lastUpdatedCondition(b, al, v))
			continue
		}
		table, a, cond, err := b.valueCondition(p, c.Modifier, v)
		if err != nil {
			return "", err
		}
		ors = append(ors, "EXISTS (SELECT 1 FROM "+byRid(table, a)+" WHERE "+a+".rid = "+al.rid()+" AND "+cond+")")
	}
	cond := "(" + strings.Join(ors, " OR ") + ")"
	if c.Modifier == "not" {
		cond = "NOT " + cond
	}
	return cond, nil
}

// errUnsupported marks a search the store cannot run.
var errUnsupported = errorf(EUnsupported, "this search is not supported")

// valueCondition returns the index table, its alias, and the condition that
// a row of it (the param's key included) matches one value.
func (b *builder) valueCondition(p *search.Param, modifier string, v search.Value) (table, a, cond string, err error) {
	a = b.alias("x")
	col := func(name string) string { return a + "." + name }
	param := col("param") + " = " + b.arg(p.Key)
	switch p.Type {
	case search.TypeToken:
		return "search_token", a, param + " AND " + b.tokenCondition(col, modifier, v), nil
	case search.TypeString:
		var c string
		switch modifier {
		case "exact":
			c = col("exact") + " = " + b.arg(v.Text)
		case "contains":
			c = col("norm") + " LIKE " + b.arg("%"+escapeLike(v.Text)+"%") + ` ESCAPE '\'`
		default:
			c = prefixCondition(b, col("norm"), v.Text)
		}
		return "search_string", a, param + " AND " + c, nil
	case search.TypeURI:
		var c string
		switch modifier {
		case "below":
			c = prefixCondition(b, col("value"), v.Text)
		case "above":
			c = "substr(" + b.arg(v.Text) + ", 1, length(" + col("value") + ")) = " + col("value")
		default:
			c = col("value") + " = " + b.arg(v.Text)
		}
		return "search_uri", a, param + " AND " + c, nil
	case search.TypeReference:
		if v.Token.Code != "" || v.Token.HasSystem { // medication=system|code
			return "search_token", a, param + " AND " + b.tokenCondition(col, "", v), nil
		}
		r := v.Reference
		var c string
		switch {
		case modifier == "identifier":
			c = col("ident_value") + " = " + b.arg(r.IdentValue) + " AND " + col("ident_value") + " <> ''"
			if r.IdentSystem != "" {
				c += " AND " + col("ident_system") + " = " + b.arg(r.IdentSystem)
			}
		case r.URL != "":
			c = col("url") + " = " + b.arg(r.URL) + " AND " + col("url") + " <> ''"
		default:
			c = col("target_id") + " = " + b.arg(r.ID)
			if r.Type != "" {
				c += " AND " + col("target_type") + " = " + b.arg(r.Type)
			}
		}
		return "search_reference", a, param + " AND " + c, nil
	case search.TypeDate:
		return "search_date", a, param + " AND " + dateCondition(b, col("low"), col("high"), v), nil
	case search.TypeQuantity, search.TypeNumber:
		n := v.Quantity.NumberValue
		if p.Type == search.TypeNumber {
			n = v.Number
		}
		c := numberCondition(b, col("value"), v.Prefix, n)
		if q := v.Quantity; q.Code != "" {
			if q.System != "" {
				c += " AND " + col("system") + " = " + b.arg(q.System) + " AND " + col("code") + " = " + b.arg(q.Code)
			} else {
				c += " AND (" + col("code") + " = " + b.arg(q.Code) + " OR " + col("unit") + " = " + b.arg(q.Code) + ")"
			}
		}
		return "search_quantity", a, param + " AND " + c, nil
	case search.TypeComposite:
		return b.compositeCondition(p, v)
	}
	return "", "", "", fmt.Errorf("%w: %s parameters", errUnsupported, p.Type)
}

// compositeCondition joins the component rows of one group: the first
// component's table is the one returned; the others join it on rid and grp.
func (b *builder) compositeCondition(p *search.Param, v search.Value) (string, string, string, error) {
	comps := p.Components
	if len(comps) != len(v.Components) {
		return "", "", "", fmt.Errorf("%w: composite %s", errUnsupported, p.Name)
	}
	var table0, a0 string
	var conds []string
	for i, cp := range p.ComponentParams() {
		table, a, cond, err := b.valueCondition(cp, "", v.Components[i])
		if err != nil {
			return "", "", "", err
		}
		if i == 0 {
			table0, a0 = table, a
			conds = append(conds, cond)
			continue
		}
		conds = append(conds, "EXISTS (SELECT 1 FROM "+byRid(table, a)+" WHERE "+a+".rid = "+a0+".rid AND "+a+".grp = "+a0+".grp AND "+cond+")")
	}
	return table0, a0, strings.Join(conds, " AND "), nil
}

func (b *builder) tokenCondition(col func(string) string, modifier string, v search.Value) string {
	t := v.Token
	switch {
	case modifier == "text":
		// text <> '' lets the partial index on text serve.
		return prefixCondition(b, col("text"), v.Text) + " AND " + col("text") + " <> ''"
	case modifier == "of-type":
		return col("type_system") + " = " + b.arg(t.TypeSystem) + " AND " + col("type_code") + " = " + b.arg(t.TypeCode) +
			" AND " + col("code") + " = " + b.arg(t.Code)
	case !t.HasSystem:
		return col("code") + " = " + b.arg(t.Code)
	case t.Code == "":
		return col("system") + " = " + b.arg(t.System)
	}
	return col("code") + " = " + b.arg(t.Code) + " AND " + col("system") + " = " + b.arg(t.System)
}

// refExists is the condition that a resource refers to a target through a
// parameter; to any resource of the target's type when its ID is empty.
func (b *builder) refExists(al alias, key string, r search.ReferenceValue) string {
	a := b.alias("x")
	target := ""
	if r.ID != "" {
		target = " AND " + a + ".target_id = " + b.arg(r.ID)
	}
	return "EXISTS (SELECT 1 FROM " + byRid("search_reference", a) + " WHERE " + a + ".rid = " + al.rid() + " AND " + a + ".param = " + b.arg(key) +
		target + " AND " + a + ".target_type = " + b.arg(r.Type) + ")"
}

// prefixCondition matches the strings that start with prefix, through the
// column's index.
func prefixCondition(b *builder, col, prefix string) string {
	return col + " >= " + b.arg(prefix) + " AND " + col + " < " + b.arg(prefix+"\U0010FFFF")
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s)
}

// dateCondition compares a stored range [low, high] with a search range by
// the R4 prefix rules.
func dateCondition(b *builder, low, high string, v search.Value) string {
	pl, ph := b.arg(v.Date.Low), b.arg(v.Date.High)
	eq := "(" + low + " >= " + pl + " AND " + low + " <= " + ph + " AND " + high + " <= " + ph + ")"
	switch v.Prefix {
	case "ne":
		return "NOT " + eq
	case "gt":
		return high + " > " + ph
	case "lt":
		return low + " < " + pl
	case "ge":
		return "(" + high + " > " + ph + " OR " + eq + ")"
	case "le":
		return "(" + low + " < " + pl + " OR " + eq + ")"
	case "sa":
		return low + " > " + ph
	case "eb":
		return high + " < " + pl
	case "ap":
		return "(" + low + " <= " + ph + " AND " + high + " >= " + pl + ")"
	}
	return eq
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// lastUpdatedCondition compares a resource's lastUpdated instant with a
// search range.
func lastUpdatedCondition(b *builder, al alias, v search.Value) string {
	col := al.lastUpdated()
	lo := b.arg(formatTime(msTime(v.Date.Low)))
	hi := b.arg(formatTime(msTime(v.Date.High)))
	eq := "(" + col + " >= " + lo + " AND " + col + " <= " + hi + ")"
	switch v.Prefix {
	case "ne":
		return "NOT " + eq
	case "gt", "sa":
		return col + " > " + hi
	case "lt", "eb":
		return col + " < " + lo
	case "ge":
		return col + " >= " + lo
	case "le":
		return col + " <= " + hi
	}
	return eq
}

// numberCondition compares a stored value with a search number by prefix;
// eq and ne use the range the number's precision implies.
func numberCondition(b *builder, col, prefix string, n search.NumberValue) string {
	switch prefix {
	case "ne":
		return "NOT (" + col + " >= " + b.arg(n.Low) + " AND " + col + " < " + b.arg(n.High) + ")"
	case "gt", "sa":
		return col + " > " + b.arg(n.Value)
	case "lt", "eb":
		return col + " < " + b.arg(n.Value)
	case "ge":
		return col + " >= " + b.arg(n.Value)
	case "le":
		return col + " <= " + b.arg(n.Value)
	case "ap":
		d := math.Abs(n.Value) * 0.1
		return col + " >= " + b.arg(n.Value-d) + " AND " + col + " <= " + b.arg(n.Value+d)
	}
	return col + " >= " + b.arg(n.Low) + " AND " + col + " < " + b.arg(n.High)
}

// sortKey is one ORDER BY key: a correlated lookup of a parameter's value.
type sortKey struct {
	param *search.Param
	desc  bool
}

func sortKeys(sorts []search.Sort) []sortKey {
	out := make([]sortKey, len(sorts))
	for i, s := range sorts {
		out[i] = sortKey{s.Param, s.Descending}
	}
	return out
}

// expr is the key's SQL, with a sentinel for resources without a value so
// that they sort last in either direction.
func (k sortKey) expr(b *builder) string {
	agg := "min"
	if k.desc {
		agg = "max"
	}
	var inner string
	var text bool
	switch k.param.Name {
	case "_id":
		return "r.id"
	case "_lastUpdated":
		return "r.last_updated"
	}
	switch k.param.Type {
	case search.TypeDate:
		col := "low"
		if k.desc {
			col = "high"
		}
		inner = "SELECT " + agg + "(" + col + ") FROM search_date INDEXED BY search_date_rid WHERE rid = r.rid AND param = " + b.arg(k.param.Key)
	case search.TypeQuantity, search.TypeNumber:
		inner = "SELECT " + agg + "(value) FROM search_quantity INDEXED BY search_quantity_rid WHERE rid = r.rid AND param = " + b.arg(k.param.Key)
	case search.TypeString:
		inner, text = "SELECT "+agg+"(norm) FROM search_string INDEXED BY search_string_rid WHERE rid = r.rid AND param = "+b.arg(k.param.Key), true
	case search.TypeReference:
		inner, text = "SELECT "+agg+"(target_type || '/' || target_id) FROM search_reference INDEXED BY search_reference_rid WHERE rid = r.rid AND param = "+
			b.arg(k.param.Key)+" AND target_id <> ''", true
	case search.TypeURI:
		inner, text = "SELECT "+agg+"(value) FROM search_uri INDEXED BY search_uri_rid WHERE rid = r.rid AND param = "+b.arg(k.param.Key), true
	default:
		inner, text = "SELECT "+agg+"(code) FROM search_token INDEXED BY search_token_rid WHERE rid = r.rid AND param = "+
			b.arg(k.param.Key)+" AND code <> ''", true
	}
	sentinel := "9.0e18"
	if k.desc {
		sentinel = "-9.0e18"
	}
	if text {
		sentinel = "char(1114111)"
		if k.desc {
			sentinel = "''"
		}
	}
	return "coalesce((" + inner + "), " + sentinel + ")"
}

func orderBy(keys []sortKey, backward bool) string {
	var parts []string
	for i, k := range keys {
		parts = append(parts, fmt.Sprintf("s%d%s", i, direction(k.desc != backward)))
	}
	return strings.Join(append(parts, "rid"+direction(backward)), ", ")
}

func direction(desc bool) string {
	if desc {
		return " DESC"
	}
	return ""
}

func sortColumns(keys []sortKey) string {
	var out string
	for i := range keys {
		out += fmt.Sprintf(", p.s%d", i)
	}
	return out
}

// keysetCondition selects the rows after (or, backward, before) the cursor
// in the sort order.
func keysetCondition(b *builder, keys []sortKey, c *cursor, backward bool) string {
	cols := make([]string, 0, len(keys)+1)
	descs := make([]bool, 0, len(keys)+1)
	vals := make([]any, 0, len(keys)+1)
	for i, k := range keys {
		cols = append(cols, fmt.Sprintf("s%d", i))
		descs = append(descs, k.desc)
		vals = append(vals, c.Keys[i])
	}
	cols = append(cols, "rid")
	descs = append(descs, false)
	vals = append(vals, c.RID)
	var ors []string
	for i := range cols {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, cols[j]+" = "+b.arg(vals[j]))
		}
		op := " > "
		if descs[i] != backward {
			op = " < "
		}
		ands = append(ands, cols[i]+op+b.arg(vals[i]))
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// includeQuery is the statement that loads what an include adds for a set
// of resources; false when none of them can have any.
func (b *builder) includeQuery(inc search.Include, from []Version, reverse bool) (string, bool) {
	var keys, refs []string // refs: the rids of the resources that refer
	for _, p := range inc.Params {
		keys = append(keys, b.arg(p.Key))
	}
	var query string
	if !reverse {
		for _, v := range from {
			if v.Type == inc.Type {
				refs = append(refs, b.arg(v.rid))
			}
		}
		if len(refs) == 0 {
			return "", false
		}
		query = "SELECT t.rid FROM search_reference a JOIN resources t ON t.type = a.target_type AND t.id = a.target_id" +
			" WHERE a.rid IN (" + strings.Join(refs, ", ") + ") AND a.param IN (" + strings.Join(keys, ", ") + ") AND t.deleted = 0"
		if inc.Target != "" {
			query += " AND t.type = " + b.arg(inc.Target)
		}
	} else {
		byType := map[string][]string{}
		var types []string
		for _, v := range from {
			if byType[v.Type] == nil {
				types = append(types, v.Type)
			}
			byType[v.Type] = append(byType[v.Type], v.ID)
		}
		var ors []string
		for _, typ := range types {
			var args []string
			for _, id := range byType[typ] {
				args = append(args, b.arg(id))
			}
			ors = append(ors, "(a.target_type = "+b.arg(typ)+" AND a.target_id IN ("+strings.Join(args, ", ")+"))")
		}
		query = "SELECT t.rid FROM search_reference a JOIN resources t ON t.rid = a.rid WHERE (" + strings.Join(ors, " OR ") +
			") AND a.param IN (" + strings.Join(keys, ", ") + ") AND t.deleted = 0 AND t.type = " + b.arg(inc.Type)
	}
	return "SELECT r.rid, v.seq, v.type, v.id, v.version, v.last_updated, v.method, v.body" +
		" FROM resources r JOIN resource_versions v ON v.seq = r.seq WHERE r.rid IN (" + query + ") ORDER BY r.rid", true
}

// cursor is a position in a sort order: the sort values and rid of a row.
type cursor struct {
	Keys     []any `json:"k,omitempty"`
	RID      int64 `json:"r"`
	Backward bool  `json:"b,omitempty"`
}

func encodeCursor(c cursor) string {
	data, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeCursor(s string, keys int) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := errorf(EInvalid, "_page=%s is not a page of this server's search results", s)
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var c cursor
	if err := dec.Decode(&c); err != nil || len(c.Keys) != keys {
		return nil, bad
	}
	for i, k := range c.Keys {
		switch v := k.(type) {
		case string:
		case json.Number:
			// Keep integers exact: a date's bound may be the largest int64.
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				c.Keys[i] = n
			} else if f, err := v.Float64(); err == nil {
				c.Keys[i] = f
			} else {
				return nil, bad
			}
		default:
			return nil, bad
		}
	}
	return &c, nil
}

// includes loads the resources _include and _revinclude add to a page.
func includes(ctx context.Context, db querier, q *search.Query, matches []Version) ([]Version, error) {
	if len(q.Include) == 0 && len(q.RevInclude) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, m := range matches {
		seen[m.Type+"/"+m.ID] = true
	}
	var out []Version
	frontier := matches
	for round := 0; len(frontier) > 0 && round < 4; round++ {
		var added []Version
		for _, kind := range []struct {
			includes []search.Include
			reverse  bool
		}{{q.Include, false}, {q.RevInclude, true}} {
			for _, inc := range kind.includes {
				if round > 0 && !inc.Iterate {
					continue
				}
				found, err := include(ctx, db, inc, frontier, kind.reverse)
				if err != nil {
					return nil, err
				}
				added = append(added, found...)
			}
		}
		frontier = nil
		for _, v := range added {
			if key := v.Type + "/" + v.ID; !seen[key] {
				seen[key] = true
				out = append(out, v)
				frontier = append(frontier, v)
			}
		}
	}
	return out, nil
}

// include finds the resources an include names for a set of resources:
// those they refer to (_include) or those that refer to them (_revinclude).
func include(ctx context.Context, db querier, inc search.Include, from []Version, reverse bool) ([]Version, error) {
	var b builder
	query, ok := b.includeQuery(inc, from, reverse)
	if !ok {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, query, b.args...)
	if err != nil {
		return nil, fmt.Errorf("store: including: %w", err)
	}
	return scanVersions(rows, true)
}
