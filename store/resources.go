package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"infusion/fhir/search"
	"infusion/mapping"
)

// Version is one stored version of a resource.
type Version struct {
	Seq         int64 // the global order of writes
	Type        string
	ID          string
	VersionID   int
	LastUpdated time.Time
	Method      string // POST, PUT or DELETE
	Deleted     bool
	Body        []byte // the resource as stored; nil when Deleted

	rid int64 // the resource's key in the search index, when loaded by a search
}

// ETag returns the weak entity tag of the version, W/"n".
func (v Version) ETag() string { return `W/"` + strconv.Itoa(v.VersionID) + `"` }

// Body renders the stored JSON of a new version once its version id and
// lastUpdated instant are known.
type Body interface {
	Bytes(versionID int, lastUpdated time.Time) []byte
}

// Put is a create or an update.
type Put struct {
	Type, ID string
	Create   bool // a create: the id must be new (the server chose it)
	IfMatch  int  // when above 0, the current version must be this one
	Body     Body
	Rows     mapping.Rows   // the model rows of the new version
	Index    search.Entries // the search index rows of the new version
}

// Writer is what an Update function works through: one atomic unit, whose
// reads see its own writes.
type Writer interface {
	Put(p Put) (v Version, created bool, err error)
	Delete(typ, id string, ifMatch int) (Version, DeleteResult, error)
	Read(typ, id string) (Version, error)
	VRead(typ, id string, version int) (Version, error)
	Search(req SearchRequest) (SearchResult, error)
	// Facts reads the infusion model as the transaction sees it.
	Facts() *Facts
	History(q HistoryQuery) ([]Version, error)
}

var _ Writer = (*Tx)(nil)

// Tx is the SQLite Writer, inside the writer's group transaction.
type Tx struct {
	ctx   context.Context
	tx    *sql.Tx
	now   time.Time
	stmts *statements
	facts factStatements
}

// current returns the number of the current version of a resource and
// whether it is a delete; version 0 when there is none.
func (t *Tx) current(typ, id string) (version int, deleted bool, err error) {
	var rid int64
	err = t.tx.StmtContext(t.ctx, t.stmts.writerCurrent).QueryRowContext(t.ctx, typ, id).Scan(&version, &deleted, &rid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return version, deleted, err
}

func checkIfMatch(typ, id string, ifMatch, current int) error {
	if ifMatch > 0 && ifMatch != current {
		if current == 0 {
			return errorf(EPrecondition, "If-Match names version %d of %s/%s, which does not exist", ifMatch, typ, id)
		}
		return errorf(EPrecondition, "If-Match names version %d of %s/%s, but the current version is %d", ifMatch, typ, id, current)
	}
	return nil
}

// Put writes a new version. created is true when the resource did not exist
// or was deleted before. Errors: EConflict when a create's id is taken,
// EPrecondition when IfMatch is not the current version.
func (t *Tx) Put(p Put) (v Version, created bool, err error) {
	cur, deleted, err := t.current(p.Type, p.ID)
	if err != nil {
		return Version{}, false, fmt.Errorf("store: reading %s/%s: %w", p.Type, p.ID, err)
	}
	if p.Create && cur > 0 {
		return Version{}, false, errorf(EConflict, "%s/%s exists already", p.Type, p.ID)
	}
	if err := checkIfMatch(p.Type, p.ID, p.IfMatch, cur); err != nil {
		return Version{}, false, err
	}
	method := "PUT"
	if p.Create {
		method = "POST"
	}
	v = Version{Type: p.Type, ID: p.ID, VersionID: cur + 1, LastUpdated: t.now, Method: method}
	v.Body = p.Body.Bytes(v.VersionID, t.now)
	rid, err := t.insertVersion(&v)
	if err != nil {
		return Version{}, false, err
	}
	fresh := cur == 0 || deleted
	if err := replaceRows(t, p.Type, p.ID, v.VersionID, p.Rows, fresh); err != nil {
		return Version{}, false, fmt.Errorf("store: writing the model rows of %s/%s: %w", p.Type, p.ID, err)
	}
	if err := t.replaceIndex(rid, p.Index, fresh); err != nil {
		return Version{}, false, fmt.Errorf("store: writing the search index of %s/%s: %w", p.Type, p.ID, err)
	}
	return v, cur == 0 || deleted, nil
}

// DeleteResult says what a delete did.
type DeleteResult int

// The outcomes of a delete that did not fail.
const (
	Deleted        DeleteResult = iota // a delete version was written
	AlreadyDeleted                     // the current version is a delete: nothing written
	NotFound                           // no such resource: nothing written
)

// Delete writes a delete version of a resource and removes its model rows.
// Error: EPrecondition when ifMatch (above 0) is not the current version.
func (t *Tx) Delete(typ, id string, ifMatch int) (Version, DeleteResult, error) {
	cur, deleted, err := t.current(typ, id)
	if err != nil {
		return Version{}, 0, fmt.Errorf("store: reading %s/%s: %w", typ, id, err)
	}
	if err := checkIfMatch(typ, id, ifMatch, cur); err != nil {
		return Version{}, 0, err
	}
	switch {
	case cur == 0:
		return Version{}, NotFound, nil
	case deleted:
		return Version{Type: typ, ID: id, VersionID: cur, Deleted: true}, AlreadyDeleted, nil
	}
	v := Version{Type: typ, ID: id, VersionID: cur + 1, LastUpdated: t.now, Method: "DELETE", Deleted: true}
	rid, err := t.insertVersion(&v)
	if err != nil {
		return Version{}, 0, err
	}
	if err := replaceRows(t, typ, id, v.VersionID, mapping.Rows{}, false); err != nil {
		return Version{}, 0, fmt.Errorf("store: removing the model rows of %s/%s: %w", typ, id, err)
	}
	if err := t.replaceIndex(rid, search.Entries{}, false); err != nil {
		return Version{}, 0, fmt.Errorf("store: removing the search index of %s/%s: %w", typ, id, err)
	}
	return v, Deleted, nil
}

// insertVersion writes a version and makes it the current one; it returns
// the resource's rid.
func (t *Tx) insertVersion(v *Version) (rid int64, err error) {
	lu := formatTime(v.LastUpdated)
	res, err := t.tx.StmtContext(t.ctx, t.stmts.insertVersion).ExecContext(t.ctx, v.Type, v.ID, v.VersionID, lu, v.Method, v.Body)
	if err != nil {
		return 0, fmt.Errorf("store: writing %s/%s: %w", v.Type, v.ID, err)
	}
	if v.Seq, err = res.LastInsertId(); err != nil {
		return 0, err
	}
	err = t.tx.StmtContext(t.ctx, t.stmts.upsertCurrent).QueryRowContext(t.ctx, v.Type, v.ID, v.VersionID, v.Seq, v.Deleted, lu).Scan(&rid)
	if err != nil {
		return 0, fmt.Errorf("store: writing %s/%s: %w", v.Type, v.ID, err)
	}
	return rid, nil
}

// The statements of read and vread.
const (
	readCurrentSQL = `SELECT v.seq, v.version, v.last_updated, v.method, v.body
		FROM resources r JOIN resource_versions v ON v.seq = r.seq WHERE r.type = ? AND r.id = ?`
	readVersionSQL = `SELECT seq, version, last_updated, method, body
		FROM resource_versions WHERE type = ? AND id = ? AND version = ?`
)

// Read returns the current version of a resource; a deleted resource is
// returned with Deleted set. Error: ENotFound.
func (s *Store) Read(ctx context.Context, typ, id string) (Version, error) {
	return readCurrent(s.stmts.readCurrent.QueryRowContext(ctx, typ, id), typ, id)
}

// VRead returns one version of a resource. Error: ENotFound.
func (s *Store) VRead(ctx context.Context, typ, id string, version int) (Version, error) {
	return readVersion(s.stmts.readVersion.QueryRowContext(ctx, typ, id, version), typ, id, version)
}

// Read is Store.Read inside the transaction.
func (t *Tx) Read(typ, id string) (Version, error) {
	return readCurrent(t.tx.QueryRowContext(t.ctx, readCurrentSQL, typ, id), typ, id)
}

// VRead is Store.VRead inside the transaction.
func (t *Tx) VRead(typ, id string, version int) (Version, error) {
	return readVersion(t.tx.QueryRowContext(t.ctx, readVersionSQL, typ, id, version), typ, id, version)
}

// Search is Store.Search inside the transaction.
func (t *Tx) Search(req SearchRequest) (SearchResult, error) { return runSearch(t.ctx, t.tx, req) }

// History is Store.History inside the transaction.
func (t *Tx) History(q HistoryQuery) ([]Version, error) { return history(t.ctx, t.tx, q) }

func readCurrent(row *sql.Row, typ, id string) (Version, error) {
	v, err := scanVersion(row, typ, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, errorf(ENotFound, "%s/%s is not known", typ, id)
	}
	return v, err
}

func readVersion(row *sql.Row, typ, id string, version int) (Version, error) {
	v, err := scanVersion(row, typ, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, errorf(ENotFound, "%s/%s has no version %d", typ, id, version)
	}
	return v, err
}

// HistoryQuery selects versions for a history interaction: of one resource
// (Type and ID), of a type (Type), or of the whole system (neither).
type HistoryQuery struct {
	Type, ID string
	Since    time.Time // only versions written at or after this instant
	Before   int64     // paging cursor: only versions with Seq below this (0: from the newest)
	Count    int       // at most this many versions
}

// History returns versions newest first.
func (s *Store) History(ctx context.Context, q HistoryQuery) ([]Version, error) {
	return history(ctx, s.read, q)
}

func history(ctx context.Context, db querier, q HistoryQuery) ([]Version, error) {
	where, args := "1=1", []any{}
	switch {
	case q.ID != "":
		where, args = "type = ? AND id = ?", []any{q.Type, q.ID}
	case q.Type != "":
		where, args = "type = ?", []any{q.Type}
	}
	if !q.Since.IsZero() {
		// lastUpdated never decreases with seq, so _since is a lower bound
		// on seq found through the last_updated index.
		where += " AND seq >= (SELECT coalesce(min(seq), 1 << 62) FROM resource_versions WHERE last_updated >= ?)"
		args = append(args, formatTime(q.Since))
	}
	if q.Before > 0 {
		where += " AND seq < ?"
		args = append(args, q.Before)
	}
	args = append(args, q.Count)
	rows, err := db.QueryContext(ctx, "SELECT seq, type, id, version, last_updated, method, body FROM resource_versions WHERE "+
		where+" ORDER BY seq DESC LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	return scanVersions(rows, false)
}

// scanVersions reads rows of (rid when withRID,) seq, type, id, version,
// last_updated, method and body, and closes them.
func scanVersions(rows *sql.Rows, withRID bool) ([]Version, error) {
	defer rows.Close()
	var out []Version
	for rows.Next() {
		var v Version
		var lu string
		dest := []any{&v.Seq, &v.Type, &v.ID, &v.VersionID, &lu, &v.Method, &v.Body}
		if withRID {
			dest = append([]any{&v.rid}, dest...)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("store: reading versions: %w", err)
		}
		if err := finish(&v, lu); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanVersion(row *sql.Row, typ, id string) (Version, error) {
	v := Version{Type: typ, ID: id}
	var lu string
	if err := row.Scan(&v.Seq, &v.VersionID, &lu, &v.Method, &v.Body); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return v, err
		}
		return v, fmt.Errorf("store: reading %s/%s: %w", typ, id, err)
	}
	return v, finish(&v, lu)
}

func finish(v *Version, lastUpdated string) error {
	t, err := time.Parse(time.RFC3339Nano, lastUpdated)
	if err != nil {
		return fmt.Errorf("store: %s/%s has a bad last_updated %q: %w", v.Type, v.ID, lastUpdated, err)
	}
	v.LastUpdated = t
	v.Deleted = v.Method == "DELETE"
	return nil
}

// statements are prepared once: on the read pool, and on the writer's one
// connection.
type statements struct {
	readCurrent, readVersion                    *sql.Stmt
	writerCurrent, insertVersion, upsertCurrent *sql.Stmt
	savepoint, rollbackTo, release              *sql.Stmt
	model                                       modelStatements
	index                                       indexStatements
	summary                                     summaryStatements
}

func (st *statements) prepare(ctx context.Context, read, write *sql.DB) error {
	var err error
	prep := func(db *sql.DB, query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = db.PrepareContext(ctx, query)
		if err != nil {
			err = fmt.Errorf("store: preparing %q: %w", query, err)
		}
		return s
	}
	st.readCurrent = prep(read, readCurrentSQL)
	st.readVersion = prep(read, readVersionSQL)
	st.writerCurrent = prep(write, `SELECT version, deleted, rid FROM resources WHERE type = ? AND id = ?`)
	st.insertVersion = prep(write, `INSERT INTO resource_versions (type, id, version, last_updated, method, body)
		VALUES (?, ?, ?, ?, ?, ?)`)
	st.upsertCurrent = prep(write, `INSERT INTO resources (type, id, version, seq, deleted, last_updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq,
		deleted = excluded.deleted, last_updated = excluded.last_updated RETURNING rid`)
	st.savepoint = prep(write, "SAVEPOINT w")
	st.rollbackTo = prep(write, "ROLLBACK TO w")
	st.release = prep(write, "RELEASE w")
	st.model.prepare(func(query string) *sql.Stmt { return prep(write, query) })
	st.index.prepare(func(query string) *sql.Stmt { return prep(write, query) })
	st.summary.prepare(func(query string) *sql.Stmt { return prep(write, query) })
	return err
}

func (st *statements) close() {
	for _, s := range append([]*sql.Stmt{st.readCurrent, st.readVersion, st.writerCurrent, st.insertVersion, st.upsertCurrent,
		st.savepoint, st.rollbackTo, st.release},
		append(append(st.model.all(), st.index.all()...), st.summary.all()...)...) {
		if s != nil {
			s.Close()
		}
	}
}
