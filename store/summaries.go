package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"infusion/mapping"
	"infusion/mapping/outcomes"
)

// summaryStatements keep the course summaries of $infusion-outcomes: the
// model's triggers name the courses a write may change in outcome_stale,
// and the writer summarizes them again at the end of the write.
type summaryStatements struct {
	anyStale, deleteStale, clearStale, insert *sql.Stmt
	// records read the stale courses, their sessions and findings, and
	// their patients' pain scores, side effects and opioid orders, by
	// patient; args are each one's arguments (the course condition's, for
	// those that hold it).
	records [6]*sql.Stmt
	args    [6][]any
}

// deleteStaleSQL deletes the summaries of the stale courses.
const deleteStaleSQL = `DELETE FROM course_outcomes WHERE (patient, order_id) IN (SELECT patient, order_id FROM outcome_stale)`

func (m *summaryStatements) prepare(prep func(string) *sql.Stmt) {
	m.anyStale = prep(`SELECT EXISTS (SELECT 1 FROM outcome_stale)`)
	m.deleteStale = prep(deleteStaleSQL)
	m.clearStale = prep(`DELETE FROM outcome_stale`)
	m.insert = prep(`INSERT INTO course_outcomes (patient, order_id, drug_class, condition_system, condition_code, condition_display,
		setting, start, first_given, last_given, outcome_from, given, stopped, not_done, stopped_for_side_effect, with_side_effect,
		side_effects, findings, baseline, sessions, mme_before, mme_after)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	var b builder
	course := b.courseCondition(outcomes.Filter{})
	for i, q := range recordQueries(course) {
		m.records[i] = prep(q)
		if strings.Contains(q, course) {
			m.args[i] = b.args
		}
	}
}

func (m *summaryStatements) all() []*sql.Stmt {
	return append([]*sql.Stmt{m.anyStale, m.deleteStale, m.clearStale, m.insert}, m.records[:]...)
}

// summarizeStale summarizes again the courses in outcome_stale, at the
// end of a write in the writer's transaction, and empties it.
func (s *Store) summarizeStale(ctx context.Context, tx *sql.Tx) error {
	m := &s.stmts.summary
	var stale bool
	if err := tx.StmtContext(ctx, m.anyStale).QueryRowContext(ctx).Scan(&stale); err != nil || !stale {
		return err
	}
	type patient struct {
		id      string
		courses []outcomes.Summary
	}
	var patients []patient
	var rows [6]*sql.Rows
	for i, q := range m.records {
		var err error
		if rows[i], err = tx.StmtContext(ctx, q).QueryContext(ctx, m.args[i]...); err != nil {
			return fmt.Errorf("store: summarizing courses: %w", err)
		}
		defer rows[i].Close()
	}
	err := readRecords(rows, func(rec outcomes.Record) error {
		patients = append(patients, patient{rec.Patient, outcomes.Summarize(rec, s.outcomes)})
		return nil
	})
	for _, r := range rows { // done reading before the tables read are written
		r.Close()
	}
	if err != nil {
		return fmt.Errorf("store: summarizing courses: %w", err)
	}
	if _, err := tx.StmtContext(ctx, m.deleteStale).ExecContext(ctx); err != nil {
		return fmt.Errorf("store: summarizing courses: %w", err)
	}
	insert := tx.StmtContext(ctx, m.insert)
	for _, p := range patients {
		for _, c := range p.courses {
			if _, err := insert.ExecContext(ctx, s.summaryRow(p.id, c)...); err != nil {
				return fmt.Errorf("store: summarizing the course %s: %w", c.Order, err)
			}
		}
	}
	_, err = tx.StmtContext(ctx, m.clearStale).ExecContext(ctx)
	return err
}

// summaryRow is the course_outcomes row of a summary.
func (s *Store) summaryRow(patient string, c outcomes.Summary) []any {
	var outcomeFrom any
	if !c.Last.IsZero() {
		outcomeFrom = formatTime(c.Last.Add(s.outcomes.SessionWindow))
	}
	return []any{patient, c.Order, string(c.Class), null(c.Condition.System), null(c.Condition.Code), null(c.Condition.Display),
		null(string(c.Setting)), instant(c.Start), instant(c.First), instant(c.Last), outcomeFrom,
		c.Given, c.Stopped, c.NotDone, c.StoppedForSideEffect, c.WithSideEffect,
		encodeCounts(c.SideEffects), encodeCounts(c.Findings), nullFloat(c.Baseline), encodeSessions(c.Sessions),
		nullFloat(c.MMEBefore), nullFloat(c.MMEAfter)}
}

func nullFloat(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// storedCount is one code's count as course_outcomes keeps it.
type storedCount struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
	Count   int    `json:"count"`
}

func encodeCounts(counts []outcomes.CodeCount) any {
	if len(counts) == 0 {
		return nil
	}
	out := make([]storedCount, len(counts))
	for i, c := range counts {
		out[i] = storedCount{c.Code.System, c.Code.Code, c.Code.Display, c.Count}
	}
	data, _ := json.Marshal(out)
	return string(data)
}

func decodeCounts(data []byte) ([]outcomes.CodeCount, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var stored []storedCount
	if err := json.Unmarshal(data, &stored); err != nil {
		return nil, fmt.Errorf("a stored count list: %w", err)
	}
	out := make([]outcomes.CodeCount, len(stored))
	for i, c := range stored {
		out[i] = outcomes.CodeCount{Code: mapping.Coding{System: c.System, Code: c.Code, Display: c.Display}, Count: c.Count}
	}
	return out, nil
}

// encodeSessions packs the sessions given: 16 bytes each, the start in
// Unix milliseconds and the score (NaN when none), little-endian.
func encodeSessions(sessions []outcomes.SessionScore) any {
	if len(sessions) == 0 {
		return nil
	}
	out := make([]byte, 0, 16*len(sessions))
	for _, s := range sessions {
		score := math.NaN()
		if s.Score != nil {
			score = *s.Score
		}
		out = binary.LittleEndian.AppendUint64(out, uint64(s.Start.UnixMilli()))
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(score))
	}
	return out
}

func decodeSessions(data []byte) ([]outcomes.SessionScore, error) {
	if len(data)%16 != 0 {
		return nil, fmt.Errorf("a stored session list of %d bytes", len(data))
	}
	out := make([]outcomes.SessionScore, len(data)/16)
	scores := make([]float64, len(out))
	for i := range out {
		out[i].Start = time.UnixMilli(int64(binary.LittleEndian.Uint64(data[16*i:]))).UTC()
		if v := math.Float64frombits(binary.LittleEndian.Uint64(data[16*i+8:])); !math.IsNaN(v) {
			scores[i] = v
			out[i].Score = &scores[i]
		}
	}
	return out, nil
}

const summariesKey = "outcome_summaries"

// summarizeAll summarizes the courses left stale by a change made outside
// the store's writes, then, when the stored summaries were made with
// another fingerprint of the options (or none), makes every summary again:
// the orders are marked stale a thousand patients at a time, each batch in
// a write that summarizes them.
func (s *Store) summarizeAll(ctx context.Context, log *slog.Logger) error {
	// Every write ends by summarizing what it left stale.
	if err := s.Update(ctx, func(Writer) error { return nil }); err != nil {
		return fmt.Errorf("store: summarizing stale courses: %w", err)
	}
	want := s.outcomes.Fingerprint()
	var have string
	err := s.write.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", summariesKey).Scan(&have)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: reading the summaries' fingerprint: %w", err)
	}
	if have == want {
		return nil
	}
	start := time.Now()
	log.Info("summarizing every course for $infusion-outcomes", slog.String("was", have))
	after, patients := "", 0
	for {
		var last sql.NullString
		err := s.Update(ctx, func(w Writer) error {
			tx := w.(*Tx).tx
			if after == "" {
				if _, err := tx.ExecContext(ctx, "DELETE FROM course_outcomes"); err != nil {
					return err
				}
			}
			var n int
			err := tx.QueryRowContext(ctx, `SELECT count(*), max(patient) FROM (SELECT DISTINCT patient
				FROM infusion_orders INDEXED BY infusion_orders_patient WHERE patient > ? ORDER BY patient LIMIT 1000)`, after).Scan(&n, &last)
			if err != nil || !last.Valid {
				return err
			}
			patients += n
			_, err = tx.ExecContext(ctx, `INSERT OR IGNORE INTO outcome_stale (patient, order_id)
				SELECT patient, id FROM infusion_orders INDEXED BY infusion_orders_patient WHERE patient > ? AND patient <= ?`, after, last.String)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: summarizing every course: %w", err)
		}
		if !last.Valid {
			break
		}
		after = last.String
	}
	err = s.Update(ctx, func(w Writer) error {
		_, err := w.(*Tx).tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, summariesKey, want)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: summarizing every course: %w", err)
	}
	log.Info("courses summarized", slog.Int("patients", patients), slog.Duration("took", time.Since(start)))
	return nil
}

// recordQueries are the queries of readRecords, by patient: the stale
// courses (the orders o meeting the condition course), their sessions and
// the findings about them, and their patients' pain scores, side effects
// and opioid orders.
func recordQueries(course string) [6]string {
	// CROSS JOIN keeps outcome_stale first: the planner would otherwise
	// start from every order of the course's drug classes.
	const stale = "outcome_stale CROSS JOIN infusion_orders o ON o.id = outcome_stale.order_id AND o.patient = outcome_stale.patient"
	const patients = "patient IN (SELECT patient FROM outcome_stale)"
	const open = "f.status NOT IN ('cancelled', 'entered-in-error')"
	return [6]string{
		`SELECT o.patient, o.id, o.status, o.authored_on, o.drug_system, o.drug_code, o.drug_display, o.drug_class, o.setting,
			(SELECT json_array(json_array(i.system, i.code, i.display)) FROM order_indications i
				WHERE i.order_id = o.id AND i.code IS NOT NULL ORDER BY i.rowid LIMIT 1)
			FROM ` + stale + ` WHERE ` + course + ` ORDER BY o.patient, o.id`,
		`SELECT o.patient, a.order_id, a.id, a.status, a.start, a.end, a.setting,
			CASE WHEN a.status IN ('stopped', 'not-done') THEN (SELECT json_group_array(json_array(r.system, r.code, r.display))
				FROM administration_reasons r WHERE r.administration_id = a.id) END
			FROM ` + stale + ` JOIN infusion_administrations a INDEXED BY infusion_administrations_sessions ON a.order_id = o.id
			WHERE a.status <> 'entered-in-error' AND ` + course + `
			ORDER BY o.patient, o.id, a.start, a.id`,
		`SELECT patient, effective, value, administration_id FROM assessments INDEXED BY assessments_pain
			WHERE kind = 'pain' AND value IS NOT NULL AND status NOT IN ('entered-in-error', 'cancelled')
			AND ` + patients + ` ORDER BY patient, effective, observation_id, idx`,
		`SELECT patient, effective, system, code, display, administration_id FROM assessments INDEXED BY assessments_side_effects
			WHERE kind = 'side-effect' AND coalesce(value_bool, 1) = 1 AND status NOT IN ('entered-in-error', 'cancelled')
			AND ` + patients + ` ORDER BY patient, effective, observation_id, idx`,
		`SELECT o.patient, f.owner, f.code FROM ` + stale + ` JOIN findings f ON f.owner = 'MedicationRequest/' || o.id
			WHERE ` + open + ` AND ` + course + `
			UNION ALL SELECT o.patient, f.owner, f.code FROM ` + stale + ` JOIN infusion_administrations a ON a.order_id = o.id
			JOIN findings f ON f.owner = 'MedicationAdministration/' || a.id WHERE ` + open + ` AND ` + course + `
			ORDER BY 1`,
		`SELECT patient, id, status, authored_on, drug_system, drug_code, drug_display, route_system, route_code,
			dose_value, dose_unit, dose_high, dose_range_unit, frequency, period, period_unit,
			bounds_start, bounds_end, validity_start, validity_end, supply_days,
			CASE WHEN drug_code IS NULL THEN (SELECT json_group_array(json_array(n.system, n.code, n.display) ORDER BY n.position)
				FROM order_ingredients n WHERE n.order_id = infusion_orders.id) END
			FROM infusion_orders WHERE drug_class = 'opioid' AND ` + patients + ` ORDER BY patient, id`,
	}
}

// readRecords merges the rows of the record queries patient by patient,
// and calls fn with each patient's record who has a course.
func readRecords(rows [6]*sql.Rows, fn func(outcomes.Record) error) error {
	courses := newCursor(rows[0], scanCourse)
	sessions := newCursor(rows[1], scanSession)
	pain := newCursor(rows[2], scanScore)
	sideEffects := newCursor(rows[3], scanSideEffect)
	findings := newCursor(rows[4], scanOutcomeFinding)
	opioids := newCursor(rows[5], scanOpioid)
	for courses.ok() {
		rec := outcomes.Record{Patient: courses.patient}
		cs := courses.take(rec.Patient)
		byOrder := make(map[string]*outcomes.Course, len(cs))
		for i := range cs {
			byOrder[cs[i].Order.ID] = &cs[i]
		}
		for _, s := range sessions.take(rec.Patient) {
			if c := byOrder[s.order]; c != nil {
				c.Sessions = append(c.Sessions, s.Administration)
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
			return err
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
