package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"infusion/mapping"
)

// Facts answers the protocol rules' questions from the infusion model's
// tables: inside a write transaction (seeing its writes) or on the read
// pool.
type Facts struct {
	ctx   context.Context
	stmts factStatements
	tx    *sql.Tx // nil on the read pool
}

// Facts returns the model facts as the read pool sees them.
func (s *Store) Facts(ctx context.Context) *Facts { return &Facts{ctx: ctx, stmts: s.factsRead} }

// Facts returns the model facts as this transaction sees them.
func (t *Tx) Facts() *Facts { return &Facts{ctx: t.ctx, stmts: t.facts, tx: t.tx} }

// The queries of Facts.
var (
	// assessmentsQuery seeks each code: through (patient, effective) it
	// would read every assessment of the patient in the window, pain
	// scores and vital signs included.
	assessmentsQuery = `SELECT ` + assessmentColumns + ` FROM assessments INDEXED BY assessments_patient_code
		WHERE patient = ? AND code IN (SELECT value FROM json_each(?)) AND effective >= ? AND effective <= ?
		AND status NOT IN ('entered-in-error', 'cancelled') ORDER BY effective DESC`
	orderQuery        = `SELECT ` + orderColumns + ` FROM infusion_orders WHERE id = ?`
	activeOrdersQuery = `SELECT ` + orderColumns + ` FROM infusion_orders
		WHERE patient = ? AND drug_class = ? AND status IN ('active', 'on-hold') ORDER BY authored_on DESC LIMIT 20`
	administrationQuery  = `SELECT ` + administrationColumns + ` FROM infusion_administrations WHERE id = ?`
	administrationsQuery = `SELECT ` + administrationColumns + ` FROM infusion_administrations
		WHERE order_id = ? ORDER BY start, id`
	patientAdministrationsQuery = `SELECT ` + administrationColumns + ` FROM infusion_administrations
		WHERE patient = ? AND start >= ? AND start <= ? ORDER BY start, id`
	openFindingsQuery       = `SELECT ` + findingColumns + ` FROM findings WHERE owner = ? AND status <> 'cancelled'`
	patientOrdersQuery      = `SELECT ` + orderColumns + ` FROM infusion_orders WHERE patient = ? ORDER BY authored_on, id`
	sessionAssessmentsQuery = `SELECT ` + assessmentColumns + ` FROM assessments
		WHERE (patient = ? AND effective >= ? AND effective <= ? OR administration_id IN (SELECT value FROM json_each(?)))
		AND status NOT IN ('entered-in-error', 'cancelled') ORDER BY effective, observation_id, idx`
	implicatingFindingsQuery = `SELECT ` + findingColumns + ` FROM findings
		WHERE status <> 'cancelled' AND (patient = ? OR owner IN (SELECT value FROM json_each(?))) ORDER BY identified, id`
	factQueries = []string{assessmentsQuery, orderQuery, activeOrdersQuery, administrationQuery, administrationsQuery,
		patientAdministrationsQuery, openFindingsQuery, patientOrdersQuery, sessionAssessmentsQuery, implicatingFindingsQuery}
)

// factStatements are the queries of Facts, prepared once on a database.
type factStatements map[string]*sql.Stmt

func (fs *factStatements) prepare(ctx context.Context, db *sql.DB) error {
	*fs = factStatements{}
	for _, q := range factQueries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("store: preparing %q: %w", q, err)
		}
		(*fs)[q] = st
	}
	return nil
}

func (fs factStatements) close() {
	for _, st := range fs {
		st.Close()
	}
}

const orderColumns = `id, patient, status, intent, authored_on, drug_system, drug_code, drug_display, drug_class,
	strength_value, strength_unit, strength_per_value, strength_per_unit, route_system, route_code, setting,
	dose_value, dose_unit, rate_value, rate_unit, rate_high, rate_range_unit, duration_minutes, frequency, period,
	period_unit, interval_hours, sessions, bounds_start, bounds_end`

func scanOrder(rows *sql.Rows) (mapping.Order, error) {
	var o mapping.Order
	var patient, intent, system, code, display, su, spu, rs, rc, setting, du, ru, rru, pu sql.NullString
	var authored, bs, be sql.NullString
	var sv, spv, dv, rv, rh, dur, period, ivl sql.NullFloat64
	var freq, sessions sql.NullInt64
	err := rows.Scan(&o.ID, &patient, &o.Status, &intent, &authored, &system, &code, &display, &o.Drug.Class,
		&sv, &su, &spv, &spu, &rs, &rc, &setting, &dv, &du, &rv, &ru, &rh, &rru, &dur, &freq, &period,
		&pu, &ivl, &sessions, &bs, &be)
	if err != nil {
		return o, err
	}
	o.Patient, o.Intent, o.AuthoredOn = patient.String, intent.String, parseStored(authored)
	o.Drug.Coding = mapping.Coding{System: system.String, Code: code.String, Display: display.String}
	if sv.Valid && spv.Valid {
		o.Drug.Strength = &mapping.Ratio{Numerator: mapping.Quantity{Value: sv.Float64, Unit: su.String},
			Denominator: mapping.Quantity{Value: spv.Float64, Unit: spu.String}}
	}
	o.Route = mapping.Coding{System: rs.String, Code: rc.String}
	o.Setting = mapping.Setting(setting.String)
	if dv.Valid {
		o.Dose = &mapping.Quantity{Value: dv.Float64, Unit: du.String}
	}
	if rv.Valid {
		o.Rate = &mapping.Quantity{Value: rv.Float64, Unit: ru.String}
	} else if rh.Valid {
		o.RateRange = &mapping.Range{High: &mapping.Quantity{Value: rh.Float64, Unit: rru.String}}
	}
	o.DurationMinutes, o.Frequency, o.Period, o.PeriodUnit = dur.Float64, int(freq.Int64), period.Float64, pu.String
	o.IntervalHours, o.Sessions = ivl.Float64, int(sessions.Int64)
	o.BoundsStart, o.BoundsEnd = parseStored(bs), parseStored(be)
	return o, nil
}

const administrationColumns = `id, order_id, patient, status, start, end, drug_system, drug_code, drug_display, drug_class,
	route_system, route_code, setting, dose_value, dose_unit, rate_value, rate_unit,
	(SELECT json_group_array(json_array(system, code, display)) FROM administration_reasons
		WHERE administration_id = infusion_administrations.id)`

func scanAdministration(rows *sql.Rows) (mapping.Administration, error) {
	var a mapping.Administration
	var order, patient, start, end, system, code, display, rs, rc, setting, du, ru, reasons sql.NullString
	var dv, rv sql.NullFloat64
	err := rows.Scan(&a.ID, &order, &patient, &a.Status, &start, &end, &system, &code, &display, &a.Drug.Class,
		&rs, &rc, &setting, &dv, &du, &rv, &ru, &reasons)
	if err != nil {
		return a, err
	}
	var codings [][3]*string // json_group_array: never NULL
	if err := json.Unmarshal([]byte(reasons.String), &codings); err != nil {
		return a, err
	}
	for _, c := range codings {
		a.StatusReason = append(a.StatusReason, mapping.Coding{System: deref(c[0]), Code: deref(c[1]), Display: deref(c[2])})
	}
	a.Order, a.Patient, a.Start, a.End = order.String, patient.String, parseStored(start), parseStored(end)
	a.Drug.Coding = mapping.Coding{System: system.String, Code: code.String, Display: display.String}
	a.Route = mapping.Coding{System: rs.String, Code: rc.String}
	a.Setting = mapping.Setting(setting.String)
	if dv.Valid {
		a.Dose = &mapping.Quantity{Value: dv.Float64, Unit: du.String}
	}
	if rv.Valid {
		a.Rate = &mapping.Quantity{Value: rv.Float64, Unit: ru.String}
	}
	return a, nil
}

const assessmentColumns = `observation_id, idx, patient, status, kind, category, system, code, display, value, unit,
	value_system, value_code, value_display, value_bool, effective, effective_end, administration_id`

func scanAssessment(rows *sql.Rows) (mapping.Assessment, error) {
	var a mapping.Assessment
	var patient, category, system, code, display, unit, vs, vc, vd, eff, effEnd, adm sql.NullString
	var value sql.NullFloat64
	var b sql.NullBool
	err := rows.Scan(&a.Observation, &a.Index, &patient, &a.Status, &a.Kind, &category, &system, &code, &display,
		&value, &unit, &vs, &vc, &vd, &b, &eff, &effEnd, &adm)
	if err != nil {
		return a, err
	}
	a.Patient, a.Category = patient.String, category.String
	a.Code = mapping.Coding{System: system.String, Code: code.String, Display: display.String}
	if value.Valid {
		a.Value = &mapping.Quantity{Value: value.Float64, Unit: unit.String}
	}
	a.ValueCode = mapping.Coding{System: vs.String, Code: vc.String, Display: vd.String}
	if b.Valid {
		a.ValueBool = &b.Bool
	}
	a.Effective, a.EffectiveEnd, a.Administration = parseStored(eff), parseStored(effEnd), adm.String
	return a, nil
}

const findingColumns = `id, owner, key, rule, status, severity, code, patient, identified, protocol, implicated`

func scanFinding(rows *sql.Rows) (mapping.Finding, error) {
	var fd mapping.Finding
	var rule, severity, code, patient, identified, protocol, implicated sql.NullString
	err := rows.Scan(&fd.ID, &fd.Owner, &fd.Key, &rule, &fd.Status, &severity, &code, &patient, &identified, &protocol, &implicated)
	if err != nil {
		return fd, err
	}
	fd.Rule, fd.Severity, fd.Code, fd.Patient = rule.String, severity.String, code.String, patient.String
	fd.Identified, fd.Protocol = parseStored(identified), protocol.String
	if implicated.Valid {
		if err := json.Unmarshal([]byte(implicated.String), &fd.Implicated); err != nil {
			return fd, err
		}
	}
	return fd, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func parseStored(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	return parseTime(s.String)
}

// parseTime reads a stored time (timeLayout) without the generality of
// time.Parse, which the analytics would pay for on millions of rows; any
// other text goes through time.Parse.
func parseTime(s string) time.Time {
	if len(s) == len(timeLayout) && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == '.' && s[23] == 'Z' {
		n := func(from, to int) (v int, ok bool) {
			for i := from; i < to; i++ {
				if s[i] < '0' || s[i] > '9' {
					return 0, false
				}
				v = v*10 + int(s[i]-'0')
			}
			return v, true
		}
		y, ok1 := n(0, 4)
		mo, ok2 := n(5, 7)
		d, ok3 := n(8, 10)
		h, ok4 := n(11, 13)
		mi, ok5 := n(14, 16)
		sec, ok6 := n(17, 19)
		ms, ok7 := n(20, 23)
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && sec < 60 {
			if t := time.Date(y, time.Month(mo), d, h, mi, sec, ms*int(time.Millisecond), time.UTC); t.Day() == d {
				return t
			}
		}
	}
	t, _ := time.Parse(timeLayout, s)
	return t
}

// collect runs a query and scans each row.
func collect[T any](f *Facts, scan func(*sql.Rows) (T, error), query string, args ...any) ([]T, error) {
	st := f.stmts[query]
	if f.tx != nil {
		st = f.tx.StmtContext(f.ctx, st)
	}
	rows, err := st.QueryContext(f.ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("store: reading the infusion model: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: reading the infusion model: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func one[T any](list []T, err error) (*T, error) {
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

// Assessments returns a patient's assessments with one of the codes,
// effective in [from, to], latest first; entered-in-error and cancelled
// observations are left out.
func (f *Facts) Assessments(patient string, codes []mapping.Coding, from, to time.Time) ([]mapping.Assessment, error) {
	if len(codes) == 0 {
		return nil, nil
	}
	list := make([]string, len(codes))
	for i, c := range codes {
		list[i] = c.Code
	}
	codeJSON, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	as, err := collect(f, scanAssessment, assessmentsQuery, patient, string(codeJSON), formatTime(from), formatTime(to))
	if err != nil {
		return nil, err
	}
	out := as[:0]
	for _, a := range as {
		for _, c := range codes {
			if a.Code.Code == c.Code && (c.System == "" || a.Code.System == c.System) {
				out = append(out, a)
				break
			}
		}
	}
	return out, nil
}

// Order returns an order; nil when there is none.
func (f *Facts) Order(id string) (*mapping.Order, error) {
	return one(collect(f, scanOrder, orderQuery, id))
}

// ActiveOrders returns a patient's active and on-hold orders of a drug
// class, newest first, at most 20.
func (f *Facts) ActiveOrders(patient string, class mapping.DrugClass) ([]mapping.Order, error) {
	return collect(f, scanOrder, activeOrdersQuery, patient, string(class))
}

// Administration returns an administration; nil when there is none.
func (f *Facts) Administration(id string) (*mapping.Administration, error) {
	return one(collect(f, scanAdministration, administrationQuery, id))
}

// Administrations returns the administrations of an order, by start.
func (f *Facts) Administrations(orderID string) ([]mapping.Administration, error) {
	return collect(f, scanAdministration, administrationsQuery, orderID)
}

// PatientAdministrations returns a patient's administrations that started
// in [from, to], by start.
func (f *Facts) PatientAdministrations(patient string, from, to time.Time) ([]mapping.Administration, error) {
	return collect(f, scanAdministration, patientAdministrationsQuery, patient, formatTime(from), formatTime(to))
}

// OpenFindings returns the findings a resource's checks raised that are not
// closed.
func (f *Facts) OpenFindings(owner string) ([]mapping.Finding, error) {
	return collect(f, scanFinding, openFindingsQuery, owner)
}

// PatientOrders returns a patient's orders, by authoredOn.
func (f *Facts) PatientOrders(patient string) ([]mapping.Order, error) {
	return collect(f, scanOrder, patientOrdersQuery, patient)
}

// SessionAssessments returns a patient's assessments effective in
// [from, to] and those part of one of the administrations (ids), by
// effective time; entered-in-error and cancelled observations are left out.
func (f *Facts) SessionAssessments(patient string, from, to time.Time, administrations []string) ([]mapping.Assessment, error) {
	ids, err := json.Marshal(administrations)
	if err != nil {
		return nil, err
	}
	return collect(f, scanAssessment, sessionAssessmentsQuery, patient, formatTime(from), formatTime(to), string(ids))
}

// ImplicatingFindings returns the open findings that implicate one of the
// resources ("Type/id"): those of the patient, and those raised by the
// resources themselves, kept when they name one of them.
func (f *Facts) ImplicatingFindings(patient string, resources []string) ([]mapping.Finding, error) {
	owners, err := json.Marshal(resources)
	if err != nil {
		return nil, err
	}
	all, err := collect(f, scanFinding, implicatingFindingsQuery, patient, string(owners))
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, fd := range all {
		if slices.ContainsFunc(fd.Implicated, func(r string) bool { return slices.Contains(resources, r) }) ||
			slices.Contains(resources, fd.Owner) {
			out = append(out, fd)
		}
	}
	return out, nil
}
