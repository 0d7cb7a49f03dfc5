// Package store keeps resources in SQLite: every version of every resource
// (the JSON exactly as accepted, plus meta), the current version of each, and
// the infusion model's rows of the current versions, all written in one
// transaction. One writer goroutine commits concurrent writes together (group
// commit), each in its own savepoint so that one failing write does not undo
// another; a pool of connections serves reads.
//
// Errors the caller can act on are *Error with a code (ENotFound,
// EConflict, EPrecondition); anything else is an internal error. Times are
// stored as UTC text with milliseconds, which sorts as it reads.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"infusion/mapping/outcomes"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure a Store. The zero value of each field means its default.
type Options struct {
	// ReadConns is the size of the read pool; default 4 × GOMAXPROCS.
	ReadConns int
	// MaxBatch is the most writes committed in one transaction; default 256.
	MaxBatch int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Outcomes are the parameters of the course summaries kept for
	// $infusion-outcomes; outcomes.Options' defaults.
	Outcomes outcomes.Options
	// Logger reports long work at opening; default none.
	Logger *slog.Logger
}

// Store is the SQLite store. It is safe for concurrent use.
type Store struct {
	write  *sql.DB // one connection: the writer's
	read   *sql.DB
	now    func() time.Time
	queue  chan *job
	done   chan struct{}
	stmts  statements
	closed chan struct{}
	// factsRead and factsWrite are the queries of Facts, which the
	// protocol checks run on every write.
	factsRead, factsWrite factStatements
	outcomes              outcomes.Options
}

// Open opens (creating if needed) the database file at path, applies the
// migrations it lacks and starts the writer.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4 * runtime.GOMAXPROCS(0)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	outcomeOpts, err := opts.Outcomes.WithDefaults()
	if err != nil {
		return nil, err
	}
	write, err := sql.Open("sqlite", dsn(path, "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite", dsn(path, "_pragma=query_only(1)"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	read.SetMaxOpenConns(opts.ReadConns)
	read.SetMaxIdleConns(opts.ReadConns)
	read.SetConnMaxLifetime(0)
	s := &Store{
		write:    write,
		read:     read,
		now:      opts.Now,
		queue:    make(chan *job, opts.MaxBatch),
		done:     make(chan struct{}),
		closed:   make(chan struct{}),
		outcomes: outcomeOpts,
	}
	err = errors.Join(s.stmts.prepare(ctx, read, write), s.factsRead.prepare(ctx, read), s.factsWrite.prepare(ctx, write))
	if err != nil {
		s.closeDBs()
		return nil, err
	}
	var last sql.NullString
	if err := write.QueryRowContext(ctx, "SELECT max(last_updated) FROM resource_versions").Scan(&last); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("store: reading the latest write: %w", err)
	}
	lastTime, _ := time.Parse(timeLayout, last.String)
	go s.runWriter(opts.MaxBatch, lastTime)
	if err := s.summarizeAll(ctx, opts.Logger); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// timeLayout is how times are stored: UTC, milliseconds, sortable as text.
const timeLayout = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// dsn builds the modernc.org/sqlite connection string: busy_timeout first,
// so that every later pragma waits rather than failing on a busy file; WAL;
// synchronous=NORMAL (durable at checkpoints, safe against corruption).
func dsn(path string, extra ...string) string {
	params := []string{
		"_pragma=busy_timeout(10000)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=foreign_keys(ON)",
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + strings.Join(append(params, extra...), "&")
}

// Close stops the writer after the writes already queued and closes the
// database.
func (s *Store) Close() error {
	close(s.done)
	<-s.closed
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	s.stmts.close()
	s.factsRead.close()
	s.factsWrite.close()
	return errors.Join(s.read.Close(), s.write.Close())
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// migrate applies, in order and each in its own transaction, the embedded
// migrations the database has not recorded yet.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("store: migration %s has no version number", base)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			version, base, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migration %s: %w", base, err)
		}
	}
	return nil
}
