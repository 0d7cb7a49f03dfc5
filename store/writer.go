package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// errClosed is returned by writes after Close.
var errClosed = errors.New("store: closed")

// job is one caller's write: fn runs inside its own savepoint.
type job struct {
	ctx    context.Context
	fn     func(Writer) error
	result chan error
}

// Update runs fn as one atomic write: everything fn does through the Tx is
// committed, or, if fn returns an error, nothing is. Writes from concurrent
// callers are committed together in one SQLite transaction (group commit),
// each in a savepoint of its own, so a failing write does not undo another.
// Update returns after the commit, with fn's error or the commit's.
func (s *Store) Update(ctx context.Context, fn func(Writer) error) error {
	j := &job{ctx: ctx, fn: fn, result: make(chan error, 1)}
	select {
	case s.queue <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errClosed
	}
	// Wait for the outcome even if ctx ends: the write may already be applied.
	select {
	case err := <-j.result:
		return err
	case <-s.closed:
		select {
		case err := <-j.result:
			return err
		default:
			return errClosed
		}
	}
}

// runWriter is the single writer: it takes the queued jobs, as many as are
// waiting up to maxBatch, and commits them in one transaction. last is the
// latest lastUpdated already stored: new writes never go below it, even if
// the clock stepped back since (history's _since relies on it).
func (s *Store) runWriter(maxBatch int, last time.Time) {
	defer close(s.closed)
	batch := make([]*job, 0, maxBatch)
	for {
		var first *job
		select {
		case first = <-s.queue:
		case <-s.done:
			for {
				select {
				case j := <-s.queue:
					last = s.commit([]*job{j}, last)
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case j := <-s.queue:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		last = s.commit(batch, last)
	}
}

// commit applies a batch in one transaction and reports to each caller. All
// writes of a batch share one lastUpdated instant, later than the previous
// batch's (by a millisecond when the clock has not moved on): a snapshot's
// latest instant then divides what it holds from what came after.
func (s *Store) commit(batch []*job, last time.Time) time.Time {
	now := s.now().UTC().Truncate(time.Millisecond)
	if !now.After(last) {
		now = last.Add(time.Millisecond)
	}
	results := make([]error, len(batch))
	err := s.inTransaction(func(tx *sql.Tx) error {
		for i, j := range batch {
			if err := j.ctx.Err(); err != nil {
				results[i] = err
				continue
			}
			if _, err := tx.Stmt(s.stmts.savepoint).Exec(); err != nil {
				return err
			}
			results[i] = run(func(w Writer) error {
				if err := j.fn(w); err != nil {
					return err
				}
				// The outcome summaries of the patients this write touched,
				// made again inside its savepoint: if that fails, this write
				// alone is undone.
				return s.summarizeStale(j.ctx, tx)
			}, &Tx{ctx: j.ctx, tx: tx, now: now, stmts: &s.stmts, facts: s.factsWrite})
			if results[i] != nil {
				if _, err := tx.Stmt(s.stmts.rollbackTo).Exec(); err != nil {
					return err
				}
			}
			if _, err := tx.Stmt(s.stmts.release).Exec(); err != nil {
				return err
			}
		}
		return nil
	})
	for i, j := range batch {
		if err != nil && results[i] == nil {
			results[i] = fmt.Errorf("store: committing: %w", err)
		}
		j.result <- results[i]
	}
	return now
}

func (s *Store) inTransaction(fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// run calls fn, turning a panic into an error so that one bad write cannot
// stop the writer.
func run(fn func(Writer) error, tx *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: write panicked: %v", r)
		}
	}()
	return fn(tx)
}
