package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"

	"infusion/mapping"
	"infusion/mapping/outcomes"
)

// Outcomes calls fn with the record of each patient who has a course that
// f selects. Each record holds the patient's selected courses and
// sessions, and all the patient's pain scores, side effects, open findings
// and opioid orders; one patient's rows are in memory at a time. The
// patients are read in parts ranges (GOMAXPROCS when parts is 0), each in
// its own goroutine and read transaction, all at the same snapshot: fn is
// called concurrently, with the part a record belongs to, and in patient
// order within a part.
func (s *Store) Outcomes(ctx context.Context, f outcomes.Filter, parts int, fn func(part int, rec outcomes.Record) error) error {
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
			return readOutcomes(ctx, snaps[i], f, bounds[i], bounds[i+1], func(rec outcomes.Record) error { return fn(i, rec) })
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

// patientBounds splits the patients with orders into parts ranges of about
// as many orders each: "" opens the first range and closes the last.
func patientBounds(ctx context.Context, sn *Snapshot, parts int) ([]string, error) {
	bounds := []string{""}
	var n int
	if err := sn.tx.QueryRowContext(ctx, "SELECT count(*) FROM infusion_orders INDEXED BY infusion_orders_patient WHERE patient IS NOT NULL").Scan(&n); err != nil {
		return nil, fmt.Errorf("store: reading outcomes: %w", err)
	}
	for i := 1; i < parts && n > 0; i++ {
		var p string
		err := sn.tx.QueryRowContext(ctx, "SELECT patient FROM infusion_orders INDEXED BY infusion_orders_patient WHERE patient IS NOT NULL ORDER BY patient LIMIT 1 OFFSET ?",
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

// readOutcomes reads the records of the patients in [from, to) ("" is
// open) through one snapshot.
func readOutcomes(ctx context.Context, snap *Snapshot, f outcomes.Filter, from, to string, fn func(outcomes.Record) error) error {
	var b builder
	cond := b.courseCondition(f)
	// Without a filter every patient with a course is in; the rows of
	// others are skipped by the merge, which is cheaper than a lookup a row.
	inCohort := "patient IS NOT NULL"
	if !f.IsZero() {
		inCohort = "patient IN (" + b.cohortPatients(f) + ")"
	}
	if from != "" {
		inCohort += " AND patient >= " + b.arg(from)
		cond += " AND o.patient >= " + b.arg(from)
	}
	if to != "" {
		inCohort += " AND patient < " + b.arg(to)
		cond += " AND o.patient < " + b.arg(to)
	}
	open := func(query string) (*sql.Rows, error) {
		rows, err := snap.tx.QueryContext(ctx, query, b.args...)
		if err != nil {
			return nil, fmt.Errorf("store: reading outcomes: %w", err)
		}
		return rows, nil
	}
	queries := []string{
		`SELECT o.patient, o.id, o.status, o.authored_on, o.drug_system, o.drug_code, o.drug_display, o.drug_class, o.setting,
			(SELECT json_array(json_array(i.system, i.code, i.display)) FROM order_indications i
				WHERE i.order_id = o.id AND i.code IS NOT NULL ORDER BY i.rowid LIMIT 1)
			FROM infusion_orders o INDEXED BY infusion_orders_patient WHERE o.patient IS NOT NULL AND ` + cond + `
			ORDER BY o.patient, o.drug_class, o.authored_on, o.id`,
		`SELECT o.patient, a.order_id, a.id, a.status, a.start, a.end, a.setting,
			CASE WHEN a.status IN ('stopped', 'not-done') THEN (SELECT json_group_array(json_array(r.system, r.code, r.display))
				FROM administration_reasons r WHERE r.administration_id = a.id) END
			FROM infusion_orders o INDEXED BY infusion_orders_patient
			JOIN infusion_administrations a INDEXED BY infusion_administrations_sessions ON a.order_id = o.id
			WHERE o.patient IS NOT NULL AND a.status <> 'entered-in-error' AND ` + cond + `
			ORDER BY o.patient, o.drug_class, o.authored_on, o.id, a.start, a.id`,
		`SELECT patient, effective, value, administration_id FROM assessments INDEXED BY assessments_pain
			WHERE kind = 'pain' AND value IS NOT NULL AND status NOT IN ('entered-in-error', 'cancelled')
			AND ` + inCohort + ` ORDER BY patient, effective, observation_id, idx`,
		`SELECT patient, effective, system, code, display, administration_id FROM assessments INDEXED BY assessments_side_effects
			WHERE kind = 'side-effect' AND coalesce(value_bool, 1) = 1 AND status NOT IN ('entered-in-error', 'cancelled')
			AND ` + inCohort + ` ORDER BY patient, effective, observation_id, idx`,
		`SELECT patient, owner, code FROM findings WHERE status NOT IN ('cancelled', 'entered-in-error')
			AND ` + inCohort + ` ORDER BY patient`,
		`SELECT patient, id, status, authored_on, drug_system, drug_code, drug_display, route_system, route_code,
			dose_value, dose_unit, dose_high, dose_range_unit, frequency, period, period_unit,
			bounds_start, bounds_end, validity_start, validity_end, supply_days,
			CASE WHEN drug_code IS NULL THEN (SELECT json_group_array(json_array(n.system, n.code, n.display) ORDER BY n.position)
				FROM order_ingredients n WHERE n.order_id = infusion_orders.id) END
			FROM infusion_orders WHERE drug_class = 'opioid' AND ` + inCohort + ` ORDER BY patient, id`,
	}
	var all []*sql.Rows
	defer func() {
		for _, r := range all {
			r.Close()
		}
	}()
	for _, q := range queries {
		rows, err := open(q)
		if err != nil {
			return err
		}
		all = append(all, rows)
	}
	courses := newCursor(all[0], scanCourse)
	sessions := newCursor(all[1], scanSession)
	pain := newCursor(all[2], scanScore)
	sideEffects := newCursor(all[3], scanSideEffect)
	findings := newCursor(all[4], scanOutcomeFinding)
	opioids := newCursor(all[5], scanOpioid)
	for courses.ok() {
		rec := outcomes.Record{Patient: courses.patient}
		cs := courses.take(rec.Patient)
		for _, s := range sessions.take(rec.Patient) {
			for i := range cs {
				if cs[i].Order.ID == s.order {
					cs[i].Sessions = append(cs[i].Sessions, s.Administration)
					break
				}
			}
		}
		rec.Courses = cs
		rec.Pain = pain.take(rec.Patient)
		rec.SideEffects = sideEffects.take(rec.Patient)
		rec.Findings = findings.take(rec.Patient)
		rec.Opioids = opioids.take(rec.Patient)
		if err := fn(rec); err != nil {
			return err
		}
	}
	for _, c := range []interface{ failure() error }{courses, sessions, pain, sideEffects, findings, opioids} {
		if err := c.failure(); err != nil {
			return fmt.Errorf("store: reading outcomes: %w", err)
		}
	}
	return nil
}

// patientCursor walks rows ordered by patient, one patient at a time. The
// first column of each row is the patient, which scan reads into a
// RawBytes: a row of the same patient as the one before allocates nothing
// for it.
type patientCursor[T any] struct {
	rows    *sql.Rows
	scan    func(rows *sql.Rows, patient *sql.RawBytes) (T, error)
	raw     sql.RawBytes
	patient string // of next
	next    T
	has     bool
	err     error
}

func newCursor[T any](rows *sql.Rows, scan func(*sql.Rows, *sql.RawBytes) (T, error)) *patientCursor[T] {
	c := &patientCursor[T]{rows: rows, scan: scan}
	c.advance()
	return c
}

func (c *patientCursor[T]) advance() {
	c.has = false
	if c.err != nil || !c.rows.Next() {
		if c.err == nil {
			c.err = c.rows.Err()
		}
		return
	}
	c.next, c.err = c.scan(c.rows, &c.raw)
	if string(c.raw) != c.patient {
		c.patient = string(c.raw)
	}
	c.has = c.err == nil
}

func (c *patientCursor[T]) ok() bool { return c.has }

func (c *patientCursor[T]) failure() error { return c.err }

// take returns the rows of a patient, skipping those of patients before it.
func (c *patientCursor[T]) take(patient string) []T {
	var out []T
	for c.has && c.patient < patient {
		c.advance()
	}
	for c.has && c.patient == patient {
		out = append(out, c.next)
		c.advance()
	}
	return out
}

// codings reads a JSON array of [system, code, display]; NULL is none.
func codings(list sql.NullString) ([]mapping.Coding, error) {
	if !list.Valid {
		return nil, nil
	}
	var raw [][3]*string
	if err := json.Unmarshal([]byte(list.String), &raw); err != nil {
		return nil, err
	}
	var out []mapping.Coding
	for _, c := range raw {
		out = append(out, mapping.Coding{System: deref(c[0]), Code: deref(c[1]), Display: deref(c[2])})
	}
	return out, nil
}

func scanCourse(rows *sql.Rows, patient *sql.RawBytes) (outcomes.Course, error) {
	var c outcomes.Course
	o := &c.Order
	var authored, system, code, display, setting, indications sql.NullString
	if err := rows.Scan(patient, &o.ID, &o.Status, &authored, &system, &code, &display, &o.Drug.Class, &setting, &indications); err != nil {
		return c, err
	}
	o.AuthoredOn, o.Setting = parseStored(authored), mapping.Setting(setting.String)
	o.Drug.Coding = mapping.Coding{System: system.String, Code: code.String, Display: display.String}
	var err error
	o.Indications, err = codings(indications)
	return c, err
}

// session is an administration with the order it belongs to.
type session struct {
	mapping.Administration
	order string
}

func scanSession(rows *sql.Rows, patient *sql.RawBytes) (session, error) {
	var s session
	var start, end, setting, reasons sql.NullString
	if err := rows.Scan(patient, &s.order, &s.ID, &s.Status, &start, &end, &setting, &reasons); err != nil {
		return s, err
	}
	s.Order, s.Start, s.End, s.Setting = s.order, parseStored(start), parseStored(end), mapping.Setting(setting.String)
	var err error
	s.StatusReason, err = codings(reasons)
	return s, err
}

func scanScore(rows *sql.Rows, patient *sql.RawBytes) (outcomes.Score, error) {
	var sc outcomes.Score
	var at, admin sql.NullString
	err := rows.Scan(patient, &at, &sc.Value, &admin)
	sc.At, sc.Administration = parseStored(at), admin.String
	return sc, err
}

func scanSideEffect(rows *sql.Rows, patient *sql.RawBytes) (outcomes.SideEffect, error) {
	var se outcomes.SideEffect
	var at, system, code, display, admin sql.NullString
	err := rows.Scan(patient, &at, &system, &code, &display, &admin)
	se.At, se.Administration = parseStored(at), admin.String
	se.Code = mapping.Coding{System: system.String, Code: code.String, Display: display.String}
	return se, err
}

func scanOutcomeFinding(rows *sql.Rows, patient *sql.RawBytes) (outcomes.Finding, error) {
	var f outcomes.Finding
	var code sql.NullString
	err := rows.Scan(patient, &f.Owner, &code)
	f.Code = code.String
	return f, err
}

func scanOpioid(rows *sql.Rows, patient *sql.RawBytes) (mapping.Order, error) {
	var o mapping.Order
	var authored, system, code, display, rs, rc, du, dru, pu, bs, be, vs, ve, ingredients sql.NullString
	var dv, dh, period, supply sql.NullFloat64
	var freq sql.NullInt64
	err := rows.Scan(patient, &o.ID, &o.Status, &authored, &system, &code, &display, &rs, &rc,
		&dv, &du, &dh, &dru, &freq, &period, &pu, &bs, &be, &vs, &ve, &supply, &ingredients)
	if err != nil {
		return o, err
	}
	ins, err := codings(ingredients)
	if err != nil {
		return o, err
	}
	for _, c := range ins {
		o.Ingredients = append(o.Ingredients, mapping.Ingredient{Coding: c})
	}
	o.AuthoredOn = parseStored(authored)
	o.Drug.Coding = mapping.Coding{System: system.String, Code: code.String, Display: display.String}
	o.Drug.Class = mapping.ClassOpioid
	o.Route = mapping.Coding{System: rs.String, Code: rc.String}
	if dv.Valid {
		o.Dose = &mapping.Quantity{Value: dv.Float64, Unit: du.String}
	} else if dh.Valid {
		o.DoseRange = &mapping.Range{High: &mapping.Quantity{Value: dh.Float64, Unit: dru.String}}
	}
	o.Frequency, o.Period, o.PeriodUnit = int(freq.Int64), period.Float64, pu.String
	o.BoundsStart, o.BoundsEnd = parseStored(bs), parseStored(be)
	o.ValidityStart, o.ValidityEnd, o.ExpectedSupplyDays = parseStored(vs), parseStored(ve), supply.Float64
	return o, nil
}
