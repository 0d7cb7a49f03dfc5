package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"infusion/fhir/search"
)

// Snapshot is a consistent read of the whole database: every query through
// it sees the state after one commit, whatever is written meanwhile. Close
// it when done; while it is open, the WAL cannot be checkpointed past it.
type Snapshot struct {
	tx *sql.Tx
	// LastUpdated is the lastUpdated of the latest write the snapshot
	// holds; zero when the database holds none. Every later write has a
	// later lastUpdated.
	LastUpdated time.Time
}

// Snapshot starts a consistent read.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: starting a snapshot: %w", err)
	}
	// The first read fixes the snapshot.
	var last sql.NullString
	if err := tx.QueryRowContext(ctx, "SELECT max(last_updated) FROM resource_versions").Scan(&last); err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("store: starting a snapshot: %w", err)
	}
	sn := &Snapshot{tx: tx}
	if last.Valid {
		if sn.LastUpdated, err = time.Parse(time.RFC3339Nano, last.String); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("store: the latest write has a bad last_updated %q: %w", last.String, err)
		}
	}
	return sn, nil
}

// Close ends the snapshot.
func (sn *Snapshot) Close() error { return sn.tx.Rollback() }

// ExportQuery selects the resources of one type that an export writes.
type ExportQuery struct {
	Type string
	// Filters are searches on Type: a resource matching any of them is
	// exported; every resource of Type when there is none.
	Filters []*search.Query
	// Compartment, when set, keeps the resources in it; an empty ID means
	// the compartment of every resource of its Type (every patient's).
	Compartment *Compartment
	// Since, when set, keeps the resources whose current version was
	// written after it.
	Since time.Time
}

// Count returns how many resources of a type are not deleted: an upper
// bound of what an ExportQuery on it writes.
func (sn *Snapshot) Count(ctx context.Context, typ string) (int64, error) {
	var n int64
	err := sn.tx.QueryRowContext(ctx, "SELECT count(*) FROM resources WHERE type = ? AND deleted = 0", typ).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: counting %s: %w", typ, err)
	}
	return n, nil
}

// Export calls fn with the stored JSON of each resource q selects, in the
// order they were first written (with Since, last written). The rows are
// streamed: body is valid only during the call. An error from fn stops the
// export and is returned.
func (sn *Snapshot) Export(ctx context.Context, q ExportQuery, fn func(body []byte) error) error {
	var b builder
	where, err := b.exportCondition(q)
	if err != nil {
		return err
	}
	// In the order of first writes; with Since, in the order of the last
	// ones, through the index that finds them without reading the others.
	index, order := "resources_type_rid", "r.rid"
	if !q.Since.IsZero() {
		index, order = "resources_type_updated", "r.last_updated, r.rid"
	}
	return sn.stream(ctx, q.Type, "SELECT v.body FROM resources r INDEXED BY "+index+" JOIN resource_versions v ON v.seq = r.seq WHERE "+
		where+" ORDER BY "+order, b.args, fn)
}

// ExportDeleted calls fn with the id of each resource of q.Type deleted
// after q.Since (a deleted resource has no search index rows left, so
// Filters and Compartment do not apply), in the order they were first
// written.
func (sn *Snapshot) ExportDeleted(ctx context.Context, q ExportQuery, fn func(id []byte) error) error {
	return sn.stream(ctx, q.Type, "SELECT r.id FROM resources r INDEXED BY resources_type_rid WHERE r.type = ?1 AND r.deleted = 1 AND r.last_updated > ?2 ORDER BY r.rid",
		[]any{q.Type, formatTime(q.Since)}, fn)
}

// stream runs a query of one column and calls fn with each value.
func (sn *Snapshot) stream(ctx context.Context, typ, query string, args []any, fn func([]byte) error) error {
	rows, err := sn.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("store: exporting %s: %w", typ, err)
	}
	defer rows.Close()
	var value sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&value); err != nil {
			return fmt.Errorf("store: exporting %s: %w", typ, err)
		}
		if err := fn(value); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: exporting %s: %w", typ, err)
	}
	return nil
}

// CheckExport reports whether the store can run q: an error (EUnsupported)
// for a filter the search engine parses but the store cannot run.
func CheckExport(q ExportQuery) error {
	var b builder
	_, err := b.exportCondition(q)
	return err
}

// exportCondition is the condition on resources r of what q selects.
func (b *builder) exportCondition(q ExportQuery) (string, error) {
	parts := []string{"r.type = " + b.arg(q.Type), "r.deleted = 0"}
	if !q.Since.IsZero() {
		parts = append(parts, "r.last_updated > "+b.arg(formatTime(q.Since)))
	}
	if c := q.Compartment; c != nil {
		var ors []string
		for _, p := range c.Params {
			ors = append(ors, b.refExists(outer, p.Key, search.ReferenceValue{Type: c.Type, ID: c.ID}))
		}
		parts = append(parts, "("+strings.Join(ors, " OR ")+")")
	}
	if len(q.Filters) > 0 {
		var ors []string
		for _, f := range q.Filters {
			ands := []string{"1 = 1"}
			for _, c := range f.Clauses {
				cond, err := b.match(c, outer, []string{q.Type})
				if err != nil {
					return "", err
				}
				ands = append(ands, cond)
			}
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		parts = append(parts, "("+strings.Join(ors, " OR ")+")")
	}
	return strings.Join(parts, " AND "), nil
}

// ExportJob is the state of a Bulk Data export job.
type ExportJob struct {
	ID       string
	Status   string // accepted, in-progress, completed or failed
	Request  []byte // the job's parameters, as its runner wrote them
	Created  time.Time
	Attempts int // how many times it was started
	// TransactionTime is the instant of the snapshot exported: every
	// resource written up to it, and none after.
	TransactionTime time.Time
	Finished        time.Time
	Expires         time.Time // when the job and its files go
	Error           string    // why it failed
	Files           []ExportFile
}

// ExportFile is one output file of a completed job.
type ExportFile struct {
	Name  string // the file's name in the job's directory
	Type  string // the resource type of its lines
	Count int64  // its lines: one resource each
	// Deleted says its lines are transaction Bundles deleting resources
	// of Type (Bulk Data's deleted output).
	Deleted bool
}

// The statuses of an export job.
const (
	ExportAccepted   = "accepted"
	ExportInProgress = "in-progress"
	ExportCompleted  = "completed"
	ExportFailed     = "failed"
)

// CreateExportJob records a new job.
func (s *Store) CreateExportJob(ctx context.Context, j ExportJob) error {
	return s.writeExportJob(ctx, j, `INSERT INTO export_jobs (id, status, request, created, transaction_time, finished, expires, error, attempts)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`)
}

// SaveExportJob writes a job's state and files, replacing what was there.
// Error: ENotFound when the job is gone (cancelled or expired meanwhile).
func (s *Store) SaveExportJob(ctx context.Context, j ExportJob) error {
	return s.writeExportJob(ctx, j, `UPDATE export_jobs SET status = ?2, request = ?3, transaction_time = ?5, finished = ?6,
		expires = ?7, error = ?8, attempts = ?9 WHERE id = ?1 AND created = ?4`)
}

func (s *Store) writeExportJob(ctx context.Context, j ExportJob, query string) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: saving export job %s: %w", j.ID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, query, j.ID, j.Status, j.Request, formatTime(j.Created), optionalTime(j.TransactionTime),
		optionalTime(j.Finished), optionalTime(j.Expires), j.Error, j.Attempts)
	if err != nil {
		return fmt.Errorf("store: saving export job %s: %w", j.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errorf(ENotFound, "export job %s is not known", j.ID)
	}
	if _, err = tx.ExecContext(ctx, "DELETE FROM export_files WHERE job = ?", j.ID); err != nil {
		return fmt.Errorf("store: saving export job %s: %w", j.ID, err)
	}
	for i, f := range j.Files {
		if _, err = tx.ExecContext(ctx, "INSERT INTO export_files (job, position, name, type, count, deleted) VALUES (?, ?, ?, ?, ?, ?)",
			j.ID, i, f.Name, f.Type, f.Count, f.Deleted); err != nil {
			return fmt.Errorf("store: saving export job %s: %w", j.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: saving export job %s: %w", j.ID, err)
	}
	return nil
}

func optionalTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

const exportJobColumns = "id, status, request, created, transaction_time, finished, expires, error, attempts"

// ExportJob reads a job with its files. Error: ENotFound.
func (s *Store) ExportJob(ctx context.Context, id string) (ExportJob, error) {
	jobs, err := s.exportJobs(ctx, "WHERE id = ?", id)
	if err != nil {
		return ExportJob{}, err
	}
	if len(jobs) == 0 {
		return ExportJob{}, errorf(ENotFound, "export job %s is not known", id)
	}
	return jobs[0], nil
}

// ExportJobs reads every job, oldest first, with its files.
func (s *Store) ExportJobs(ctx context.Context) ([]ExportJob, error) {
	return s.exportJobs(ctx, "ORDER BY created, id")
}

func (s *Store) exportJobs(ctx context.Context, where string, args ...any) ([]ExportJob, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+exportJobColumns+" FROM export_jobs "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: reading export jobs: %w", err)
	}
	var jobs []ExportJob
	for rows.Next() {
		var j ExportJob
		var created string
		var tt, finished, expires, msg sql.NullString
		if err := rows.Scan(&j.ID, &j.Status, &j.Request, &created, &tt, &finished, &expires, &msg, &j.Attempts); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: reading export jobs: %w", err)
		}
		j.Error = msg.String
		var errs []error
		for _, f := range []struct {
			to   *time.Time
			text string
		}{{&j.Created, created}, {&j.TransactionTime, tt.String}, {&j.Finished, finished.String}, {&j.Expires, expires.String}} {
			if f.text != "" {
				var err error
				*f.to, err = time.Parse(time.RFC3339Nano, f.text)
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: export job %s has a bad time: %w", j.ID, err)
		}
		jobs = append(jobs, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading export jobs: %w", err)
	}
	for i := range jobs {
		if jobs[i].Files, err = s.exportFiles(ctx, jobs[i].ID); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

func (s *Store) exportFiles(ctx context.Context, job string) ([]ExportFile, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT name, type, count, deleted FROM export_files WHERE job = ? ORDER BY position", job)
	if err != nil {
		return nil, fmt.Errorf("store: reading the files of export job %s: %w", job, err)
	}
	defer rows.Close()
	var files []ExportFile
	for rows.Next() {
		var f ExportFile
		if err := rows.Scan(&f.Name, &f.Type, &f.Count, &f.Deleted); err != nil {
			return nil, fmt.Errorf("store: reading the files of export job %s: %w", job, err)
		}
		files = append(files, f)
	}
	return files, rows.Err()
}

// DeleteExportJob removes a job and its file list; deleting an unknown job
// does nothing.
func (s *Store) DeleteExportJob(ctx context.Context, id string) error {
	if _, err := s.write.ExecContext(ctx, "DELETE FROM export_jobs WHERE id = ?", id); err != nil {
		return fmt.Errorf("store: deleting export job %s: %w", id, err)
	}
	return nil
}
