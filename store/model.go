package store

import (
	"database/sql"
	"encoding/json"
	"time"

	"infusion/mapping"
)

// modelStatements write the infusion model's tables.
type modelStatements struct {
	deleteOrder, deleteIndications, deleteIngredients *sql.Stmt
	insertOrder, insertIndication, insertIngredient   *sql.Stmt
	deleteAdministration, deleteReasons               *sql.Stmt
	insertAdministration, insertReason                *sql.Stmt
	deleteAssessments, insertAssessment               *sql.Stmt
	deleteFinding, insertFinding                      *sql.Stmt
}

func (m *modelStatements) prepare(prep func(string) *sql.Stmt) {
	m.deleteOrder = prep(`DELETE FROM infusion_orders WHERE id = ?`)
	m.deleteIndications = prep(`DELETE FROM order_indications WHERE order_id = ?`)
	m.deleteIngredients = prep(`DELETE FROM order_ingredients WHERE order_id = ?`)
	m.insertOrder = prep(`INSERT INTO infusion_orders (id, version, patient, status, intent, priority, authored_on,
		drug_system, drug_code, drug_display, drug_class, form_code,
		strength_value, strength_unit, strength_per_value, strength_per_unit,
		route_system, route_code, route_display, setting,
		dose_value, dose_unit, dose_low, dose_high, dose_range_unit,
		rate_value, rate_unit, rate_low, rate_high, rate_range_unit,
		weight_based, as_needed, duration_minutes, frequency, period, period_unit, interval_hours, sessions,
		bounds_start, bounds_end, max_dose_per_admin_value, max_dose_per_admin_unit,
		max_dose_lifetime_value, max_dose_lifetime_unit,
		validity_start, validity_end, supply_days, dispense_quantity_value, dispense_quantity_unit)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
		        ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	m.insertIndication = prep(`INSERT INTO order_indications (order_id, system, code, display, reference) VALUES (?, ?, ?, ?, ?)`)
	m.insertIngredient = prep(`INSERT INTO order_ingredients (order_id, position, system, code, display,
		strength_value, strength_unit, per_value, per_unit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	m.deleteAdministration = prep(`DELETE FROM infusion_administrations WHERE id = ?`)
	m.deleteReasons = prep(`DELETE FROM administration_reasons WHERE administration_id = ?`)
	m.insertAdministration = prep(`INSERT INTO infusion_administrations (id, version, order_id, patient, status, start, end,
		drug_system, drug_code, drug_display, drug_class, route_system, route_code, setting,
		dose_value, dose_unit, rate_value, rate_unit)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	m.insertReason = prep(`INSERT INTO administration_reasons (administration_id, system, code, display) VALUES (?, ?, ?, ?)`)
	m.deleteAssessments = prep(`DELETE FROM assessments WHERE observation_id = ?`)
	m.insertAssessment = prep(`INSERT INTO assessments (observation_id, idx, version, patient, status, kind, category,
		system, code, display, value, unit, value_system, value_code, value_display, value_bool, value_text,
		effective, effective_end, administration_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	m.deleteFinding = prep(`DELETE FROM findings WHERE id = ?`)
	m.insertFinding = prep(`INSERT INTO findings (id, version, owner, key, rule, status, severity, code, patient, identified, protocol,
		implicated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
}

func (m *modelStatements) all() []*sql.Stmt {
	return []*sql.Stmt{m.deleteOrder, m.deleteIndications, m.deleteIngredients, m.insertOrder, m.insertIndication,
		m.insertIngredient, m.deleteAdministration, m.deleteReasons, m.insertAdministration, m.insertReason,
		m.deleteAssessments, m.insertAssessment, m.deleteFinding, m.insertFinding}
}

// replaceRows replaces the model rows of a resource with those of its new
// version (none for a delete). fresh says the resource had no rows before
// (a new resource, or one whose current version is a delete).
func replaceRows(t *Tx, typ, id string, version int, rows mapping.Rows, fresh bool) error {
	m := &t.stmts.model
	exec := func(s *sql.Stmt, args ...any) error {
		_, err := t.tx.StmtContext(t.ctx, s).ExecContext(t.ctx, args...)
		return err
	}
	var deletes []*sql.Stmt
	switch typ {
	case "MedicationRequest":
		deletes = []*sql.Stmt{m.deleteOrder, m.deleteIndications, m.deleteIngredients}
	case "MedicationAdministration":
		deletes = []*sql.Stmt{m.deleteAdministration, m.deleteReasons}
	case "Observation":
		deletes = []*sql.Stmt{m.deleteAssessments}
	case "DetectedIssue":
		deletes = []*sql.Stmt{m.deleteFinding}
	}
	if !fresh {
		for _, s := range deletes {
			if err := exec(s, id); err != nil {
				return err
			}
		}
	}
	if o := rows.Order; o != nil {
		d := o.Drug
		sv, su, pv, pu := ratio(d.Strength)
		dl, dh, du := rangeOf(o.DoseRange)
		rl, rh, ru := rangeOf(o.RateRange)
		dv, dun := quantity(o.Dose)
		rv, run := quantity(o.Rate)
		mav, mau := quantity(o.MaxDosePerAdministration)
		mlv, mlu := quantity(o.MaxDosePerLifetime)
		dqv, dqu := quantity(o.DispenseQuantity)
		if err := exec(m.insertOrder, id, version, null(o.Patient), o.Status, null(o.Intent), null(o.Priority), instant(o.AuthoredOn),
			null(d.System), null(d.Code), null(d.Display), string(d.Class), null(d.Form.Code),
			sv, su, pv, pu,
			null(o.Route.System), null(o.Route.Code), null(o.Route.Display), null(string(o.Setting)),
			dv, dun, dl, dh, du,
			rv, run, rl, rh, ru,
			o.WeightBased, o.AsNeeded, positive(o.DurationMinutes), positive(float64(o.Frequency)), positive(o.Period),
			null(o.PeriodUnit), positive(o.IntervalHours), positive(float64(o.Sessions)),
			instant(o.BoundsStart), instant(o.BoundsEnd), mav, mau, mlv, mlu,
			instant(o.ValidityStart), instant(o.ValidityEnd), positive(o.ExpectedSupplyDays), dqv, dqu); err != nil {
			return err
		}
		for _, c := range o.Indications {
			if err := exec(m.insertIndication, id, null(c.System), null(c.Code), null(c.Display), nil); err != nil {
				return err
			}
		}
		for _, r := range o.ReasonRefs {
			if err := exec(m.insertIndication, id, nil, nil, nil, r); err != nil {
				return err
			}
		}
		for i, in := range o.Ingredients {
			sv, su, pv, pu := ratio(in.Strength)
			if err := exec(m.insertIngredient, id, i, null(in.System), null(in.Code), null(in.Display), sv, su, pv, pu); err != nil {
				return err
			}
		}
	}
	if a := rows.Administration; a != nil {
		dv, du := quantity(a.Dose)
		rv, ru := quantity(a.Rate)
		if err := exec(m.insertAdministration, id, version, null(a.Order), null(a.Patient), a.Status, instant(a.Start), instant(a.End),
			null(a.Drug.System), null(a.Drug.Code), null(a.Drug.Display), string(a.Drug.Class),
			null(a.Route.System), null(a.Route.Code), null(string(a.Setting)), dv, du, rv, ru); err != nil {
			return err
		}
		for _, c := range a.StatusReason {
			if err := exec(m.insertReason, id, null(c.System), null(c.Code), null(c.Display)); err != nil {
				return err
			}
		}
	}
	if f := rows.Finding; f != nil {
		if err := exec(m.insertFinding, id, version, f.Owner, f.Key, null(f.Rule), f.Status, null(f.Severity), null(f.Code),
			null(f.Patient), instant(f.Identified), null(f.Protocol), jsonList(f.Implicated)); err != nil {
			return err
		}
	}
	for _, a := range rows.Assessments {
		v, u := quantity(a.Value)
		var b any
		if a.ValueBool != nil {
			b = *a.ValueBool
		}
		if err := exec(m.insertAssessment, id, a.Index, version, null(a.Patient), a.Status, string(a.Kind), null(a.Category),
			null(a.Code.System), null(a.Code.Code), null(a.Code.Display), v, u,
			null(a.ValueCode.System), null(a.ValueCode.Code), null(a.ValueCode.Display), b, null(a.ValueText),
			instant(a.Effective), instant(a.EffectiveEnd), null(a.Administration)); err != nil {
			return err
		}
	}
	return nil
}

// null stores an empty string as NULL.
func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// positive stores zero (not given) as NULL.
func positive(f float64) any {
	if f <= 0 {
		return nil
	}
	return f
}

func instant(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

func quantity(q *mapping.Quantity) (value, unit any) {
	if q == nil {
		return nil, nil
	}
	return q.Value, null(q.Unit)
}

func ratio(r *mapping.Ratio) (value, unit, perValue, perUnit any) {
	if r == nil {
		return nil, nil, nil, nil
	}
	value, unit = quantity(&r.Numerator)
	perValue, perUnit = quantity(&r.Denominator)
	return
}

// rangeOf returns the low and high values of a range and their unit.
func rangeOf(r *mapping.Range) (low, high, unit any) {
	if r == nil {
		return nil, nil, nil
	}
	var lu, hu any
	low, lu = quantity(r.Low)
	high, hu = quantity(r.High)
	if lu != nil {
		return low, high, lu
	}
	return low, high, hu
}

// jsonList stores a list of strings as a JSON array; an empty list as NULL.
func jsonList(list []string) any {
	if len(list) == 0 {
		return nil
	}
	data, err := json.Marshal(list)
	if err != nil {
		return nil
	}
	return string(data)
}
