package store

import (
	"database/sql"

	"infusion/fhir/search"
)

// indexStatements write the search index tables.
type indexStatements struct {
	deletes                                    []*sql.Stmt
	token, str, reference, date, quantity, uri *sql.Stmt
}

var indexTables = []string{"search_token", "search_string", "search_reference", "search_date", "search_quantity", "search_uri"}

func (x *indexStatements) prepare(prep func(string) *sql.Stmt) {
	for _, t := range indexTables {
		x.deletes = append(x.deletes, prep("DELETE FROM "+t+" WHERE rid = ?"))
	}
	x.token = prep(`INSERT OR IGNORE INTO search_token (rid, param, grp, system, code, text, type_system, type_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	x.str = prep(`INSERT OR IGNORE INTO search_string (rid, param, grp, norm, exact) VALUES (?, ?, ?, ?, ?)`)
	x.reference = prep(`INSERT OR IGNORE INTO search_reference (rid, param, grp, target_type, target_id, url, ident_system, ident_value)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	x.date = prep(`INSERT OR IGNORE INTO search_date (rid, param, grp, low, high) VALUES (?, ?, ?, ?, ?)`)
	x.quantity = prep(`INSERT OR IGNORE INTO search_quantity (rid, param, grp, value, system, code, unit) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	x.uri = prep(`INSERT OR IGNORE INTO search_uri (rid, param, grp, value) VALUES (?, ?, ?, ?)`)
}

func (x *indexStatements) all() []*sql.Stmt {
	return append([]*sql.Stmt{x.token, x.str, x.reference, x.date, x.quantity, x.uri}, x.deletes...)
}

// replaceIndex replaces the search index rows of a resource; fresh says it
// had none.
func (t *Tx) replaceIndex(rid int64, e search.Entries, fresh bool) error {
	x := &t.stmts.index
	exec := func(s *sql.Stmt, args ...any) error {
		_, err := t.tx.StmtContext(t.ctx, s).ExecContext(t.ctx, args...)
		return err
	}
	if !fresh {
		for _, s := range x.deletes {
			if err := exec(s, rid); err != nil {
				return err
			}
		}
	}
	for _, v := range e.Tokens {
		if err := exec(x.token, rid, v.Param, v.Group, v.System, v.Code, v.Text, v.TypeSystem, v.TypeCode); err != nil {
			return err
		}
	}
	for _, v := range e.Strings {
		if err := exec(x.str, rid, v.Param, v.Group, v.Norm, v.Exact); err != nil {
			return err
		}
	}
	for _, v := range e.References {
		if err := exec(x.reference, rid, v.Param, v.Group, v.TargetType, v.TargetID, v.URL, v.IdentSystem, v.IdentValue); err != nil {
			return err
		}
	}
	for _, v := range e.Dates {
		if err := exec(x.date, rid, v.Param, v.Group, v.Low, v.High); err != nil {
			return err
		}
	}
	for _, v := range e.Quantities {
		if err := exec(x.quantity, rid, v.Param, v.Group, v.Value, v.System, v.Code, v.Unit); err != nil {
			return err
		}
	}
	for _, v := range e.URIs {
		if err := exec(x.uri, rid, v.Param, v.Group, v.Value); err != nil {
			return err
		}
	}
	return nil
}
