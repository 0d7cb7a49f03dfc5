package store

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"

	"infusion/mapping"
	"infusion/mapping/outcomes"
)

// Outcomes calls fn with the summaries of the courses f selects, patient
// by patient, each with its outcome score in window after the course's
// last session. The patients are read in parts ranges (GOMAXPROCS when
// parts is 0), each in its own goroutine and read transaction, all at the
// same snapshot: fn is called concurrently, with the part the patient
// belongs to, and in patient order within a part.
func (s *Store) Outcomes(ctx context.Context, f outcomes.Filter, window time.Duration, parts int,
	fn func(part int, patient string, courses []outcomes.Summary) error) error {
	if parts <= 0 {
		parts = runtime.GOMAXPROCS(0)
	}
	snaps, err := s.snapshots(ctx, parts)
	if err != nil {
		return err
	}
	defer func() {
		for _, sn := range snaps {
			sn.Close()
		}
	}()
	bounds, err := patientBounds(ctx, snaps[0], len(snaps))
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	for i := range len(bounds) - 1 {
		g.Go(func() error {
			return readSummaries(ctx, snaps[i], f, window, bounds[i], bounds[i+1], func(patient string, courses []outcomes.Summary) error {
				return fn(i, patient, courses)
			})
		})
	}
	return g.Wait()
}

// snapshots starts n read transactions at the same snapshot: the latest
// write each sees is the same (a commit between two starts makes it
// differ; then it tries again, and after three tries reads with one).
func (s *Store) snapshots(ctx context.Context, n int) ([]*Snapshot, error) {
	for try := 0; ; try++ {
		if try == 3 {
			n = 1
		}
		var snaps []*Snapshot
		same := true
		for range n {
			sn, err := s.Snapshot(ctx)
			if err != nil {
				for _, o := range snaps {
					o.Close()
				}
				return nil, err
			}
			same = same && (len(snaps) == 0 || sn.LastUpdated.Equal(snaps[0].LastUpdated))
			snaps = append(snaps, sn)
		}
		if same {
			return snaps, nil
		}
		for _, sn := range snaps {
			sn.Close()
		}
	}
}

// patientBounds splits the patients with courses into parts ranges of
// about as many courses each: "" opens the first range and closes the last.
func patientBounds(ctx context.Context, sn *Snapshot, parts int) ([]string, error) {
	bounds := []string{""}
	var n int
	if err := sn.tx.QueryRowContext(ctx, "SELECT count(*) FROM course_outcomes").Scan(&n); err != nil {
		return nil, fmt.Errorf("store: reading outcomes: %w", err)
	}
	for i := 1; i < parts && n > 0; i++ {
		var p string
		err := sn.tx.QueryRowContext(ctx, "SELECT patient FROM course_outcomes ORDER BY patient LIMIT 1 OFFSET ?",
			i*n/parts).Scan(&p)
		if err != nil {
			return nil, fmt.Errorf("store: reading outcomes: %w", err)
		}
		if p > bounds[len(bounds)-1] {
			bounds = append(bounds, p)
		}
	}
	return append(bounds, ""), nil
}

// readSummaries reads the course summaries of the patients in [from, to)
// ("" is open) whose courses f selects, through one snapshot, and finds
// each course's outcome score: the last pain score, part of no session,
// later than the session window after the last session and at most window
// after it.
func readSummaries(ctx context.Context, snap *Snapshot, f outcomes.Filter, window time.Duration, from, to string,
	fn func(patient string, courses []outcomes.Summary) error) error {
	var b builder
	outcomeTo := b.arg(fmt.Sprintf("+%d seconds", int64(window/time.Second)))
	where := "1"
	if !f.IsZero() {
		where = "EXISTS (SELECT 1 FROM infusion_orders o WHERE o.id = c.order_id AND " + b.courseCondition(f) + ")"
	}
	if from != "" {
		where += " AND c.patient >= " + b.arg(from)
	}
	if to != "" {
		where += " AND c.patient < " + b.arg(to)
	}
	rows, err := snap.tx.QueryContext(ctx, `SELECT c.patient, c.order_id, c.drug_class, c.condition_system, c.condition_code,
		c.condition_display, c.setting, c.start, c.first_given, c.last_given, c.given, c.stopped, c.not_done,
		c.stopped_for_side_effect, c.with_side_effect, c.side_effects, c.findings, c.baseline, c.sessions, c.mme_before, c.mme_after,
		CASE WHEN c.last_given IS NOT NULL THEN (SELECT p.value FROM assessments p INDEXED BY assessments_pain
			WHERE p.kind = 'pain' AND p.patient = c.patient AND p.effective > c.outcome_from
			AND p.effective <= strftime('%Y-%m-%dT%H:%M:%fZ', c.last_given, `+outcomeTo+`)
			AND p.value IS NOT NULL AND p.administration_id IS NULL AND p.status NOT IN ('entered-in-error', 'cancelled')
			ORDER BY p.effective DESC, p.observation_id DESC, p.idx DESC LIMIT 1) END
		FROM course_outcomes c WHERE `+where+` ORDER BY c.patient, c.order_id`, b.args...)
	if err != nil {
		return fmt.Errorf("store: reading outcomes: %w", err)
	}
	defer rows.Close()
	courses := newCursor(rows, scanSummary)
	for courses.ok() {
		patient := courses.patient
		if err := fn(patient, courses.take(patient)); err != nil {
			return err
		}
	}
	if err := courses.failure(); err != nil {
		return fmt.Errorf("store: reading outcomes: %w", err)
	}
	return nil
}

func scanSummary(rows *sql.Rows, patient *sql.RawBytes) (outcomes.Summary, error) {
	var c outcomes.Summary
	var condSystem, condCode, condDisplay, setting, start, first, last sql.NullString
	var sideEffects, findings, sessions sql.RawBytes
	var baseline, before, after, outcome sql.NullFloat64
	err := rows.Scan(patient, &c.Order, &c.Class, &condSystem, &condCode, &condDisplay, &setting, &start, &first, &last,
		&c.Given, &c.Stopped, &c.NotDone, &c.StoppedForSideEffect, &c.WithSideEffect, &sideEffects, &findings,
		&baseline, &sessions, &before, &after, &outcome)
	if err != nil {
		return c, err
	}
	c.Condition = mapping.Coding{System: condSystem.String, Code: condCode.String, Display: condDisplay.String}
	c.Setting = mapping.Setting(setting.String)
	c.Start, c.First, c.Last = parseStored(start), parseStored(first), parseStored(last)
	c.Baseline, c.MMEBefore, c.MMEAfter, c.Outcome = floatPtr(baseline), floatPtr(before), floatPtr(after), floatPtr(outcome)
	if c.SideEffects, err = decodeCounts(sideEffects); err != nil {
		return c, err
	}
	if c.Findings, err = decodeCounts(findings); err != nil {
		return c, err
	}
	c.Sessions, err = decodeSessions(sessions)
	return c, err
}

func floatPtr(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}
