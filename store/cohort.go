package store

import (
	"strings"

	"infusion/mapping/outcomes"
)

// courseStartSQL is the start of the course of order o: its first
// session's, or its authoredOn when it has none.
const courseStartSQL = `coalesce((SELECT min(a.start) FROM infusion_administrations a
	WHERE a.order_id = o.id AND a.status <> 'entered-in-error'), o.authored_on)`

// courseSettingSQL is the setting of the course of order o: the order's,
// or its first session's when the order does not say.
const courseSettingSQL = `coalesce(o.setting, (SELECT a.setting FROM infusion_administrations a
	WHERE a.order_id = o.id AND a.status <> 'entered-in-error' AND a.setting IS NOT NULL ORDER BY a.start LIMIT 1))`

// courseCondition is the condition on infusion_orders o that it is one of
// the courses f selects: an order of an infusion drug class, not entered
// in error, matching every list of f.
func (b *builder) courseCondition(f outcomes.Filter) string {
	classes := f.DrugClasses
	if len(classes) == 0 {
		classes = outcomes.InfusionClasses
	}
	var in []string
	for _, c := range classes {
		in = append(in, b.arg(string(c)))
	}
	parts := []string{"o.drug_class IN (" + strings.Join(in, ", ") + ")", "o.status <> 'entered-in-error'"}
	codes := func(list []outcomes.Code, match func(c outcomes.Code) string) {
		if len(list) == 0 {
			return
		}
		var ors []string
		for _, c := range list {
			ors = append(ors, match(c))
		}
		parts = append(parts, "("+strings.Join(ors, " OR ")+")")
	}
	codes(f.Medications, func(c outcomes.Code) string {
		cond := "o.drug_code = " + b.arg(c.Code)
		if c.System != "" {
			cond += " AND o.drug_system = " + b.arg(c.System)
		}
		return "(" + cond + ")"
	})
	codes(f.Conditions, func(c outcomes.Code) string {
		cond := "i.code = " + b.arg(c.Code)
		if c.System != "" {
			cond += " AND i.system = " + b.arg(c.System)
		}
		return "EXISTS (SELECT 1 FROM order_indications i WHERE i.order_id = o.id AND " + cond + ")"
	})
	if len(f.Settings) > 0 {
		var in []string
		for _, s := range f.Settings {
			in = append(in, b.arg(string(s)))
		}
		parts = append(parts, courseSettingSQL+" IN ("+strings.Join(in, ", ")+")")
	}
	if !f.From.IsZero() {
		parts = append(parts, courseStartSQL+" >= "+b.arg(formatTime(f.From)))
	}
	if !f.To.IsZero() {
		parts = append(parts, courseStartSQL+" <= "+b.arg(formatTime(f.To)))
	}
	return strings.Join(parts, " AND ")
}

// courseOrders selects the ids of the orders that are the courses of f.
func (b *builder) courseOrders(f outcomes.Filter) string {
	return "SELECT o.id FROM infusion_orders o WHERE " + b.courseCondition(f)
}

// cohortPatients selects the patients ("Patient/id") of the courses of f.
func (b *builder) cohortPatients(f outcomes.Filter) string {
	return "SELECT DISTINCT o.patient FROM infusion_orders o WHERE o.patient IS NOT NULL AND " + b.courseCondition(f)
}
