package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"infusion/mapping"
	"infusion/mapping/outcomes"
)

// The flat tables of the infusion model ($infusion-tables): one output row
// per model row, with the child rows (indications, status reasons,
// ingredients) folded into columns. Each table is defined once, by its
// columns (name, type, meaning and the SQL giving it); the server writes
// CSV, NDJSON and Parquet from that one definition.

// ColumnType is the type of the values of a flat table's column.
type ColumnType string

// The column types, with the Go type of their values in a row of Table.
const (
	TypeString    ColumnType = "string"    // string
	TypeDouble    ColumnType = "double"    // float64
	TypeInteger   ColumnType = "integer"   // int64
	TypeBoolean   ColumnType = "boolean"   // bool
	TypeTimestamp ColumnType = "timestamp" // time.Time, UTC, millisecond precision
)

// Column is one column of a flat table. Every column may be missing (nil
// in a row of Table).
type Column struct {
	Name string     // snake_case
	Type ColumnType // the type of its values
	Doc  string     // what it holds
	sql  string     // the SQL expression giving it
}

// table is the definition of one flat table.
type table struct {
	name    string
	from    string // the model table and its alias (and joins)
	order   string // the row order: the model table's key
	columns []Column
	// cohort is the condition keeping the rows of the cohort of f.
	cohort func(b *builder, f outcomes.Filter) string
}

// patientIDSQL is the id of a "Patient/id" reference in col.
func patientIDSQL(col string) string {
	return "CASE WHEN " + col + " LIKE 'Patient/%' THEN substr(" + col + ", 9) END"
}

// tokenSQL is the token "system|code" of the columns system and code (the
// code alone when there is no system).
func tokenSQL(system, code string) string {
	return "CASE WHEN " + system + " IS NULL THEN " + code + " ELSE " + system + " || '|' || " + code + " END"
}

// col builds a Column.
func col(name string, typ ColumnType, sql, doc string) Column {
	return Column{Name: name, Type: typ, Doc: doc, sql: sql}
}

// patientColumns are the patient reference and id of the column ref.
func patientColumns(ref string) []Column {
	return []Column{
		col("patient", TypeString, ref, "the subject, as the reference Patient/{id}"),
		col("patient_id", TypeString, patientIDSQL(ref), "the id of the subject Patient"),
	}
}

// drugColumns are the medication's coding and class of the table alias a.
func drugColumns(a string) []Column {
	return []Column{
		col("drug_system", TypeString, a+".drug_system", "the medication's code system (RxNorm, SNOMED CT, ...)"),
		col("drug_code", TypeString, a+".drug_code", "the medication's code"),
		col("drug_display", TypeString, a+".drug_display", "the medication's display name"),
		col("drug_class", TypeString, a+".drug_class", "ketamine, lidocaine, gabapentinoid, vitamin-nutrient, opioid or other"),
	}
}

// tables are the flat tables, in the order they are listed.
var tables = []table{
	{
		name:  "orders",
		from:  "infusion_orders o LEFT JOIN order_indications ci ON ci.rowid = (SELECT min(i.rowid) FROM order_indications i WHERE i.order_id = o.id AND i.code IS NOT NULL)",
		order: "o.id",
		columns: slices.Concat([]Column{
			col("order_id", TypeString, "o.id", "the MedicationRequest id"),
			col("version", TypeInteger, "o.version", "its current version (meta.versionId)"),
		}, patientColumns("o.patient"), []Column{
			col("status", TypeString, "o.status", "MedicationRequest.status"),
			col("intent", TypeString, "o.intent", "MedicationRequest.intent"),
			col("priority", TypeString, "o.priority", "MedicationRequest.priority"),
			col("authored_on", TypeTimestamp, "o.authored_on", "MedicationRequest.authoredOn"),
		}, drugColumns("o"), []Column{
			col("form_code", TypeString, "o.form_code", "the dose form's code"),
			col("strength_value", TypeDouble, "o.strength_value", "the concentration's numerator value (e.g. 10 of 10 mg/mL)"),
			col("strength_unit", TypeString, "o.strength_unit", "its UCUM unit"),
			col("strength_per_value", TypeDouble, "o.strength_per_value", "the concentration's denominator value (e.g. 1 of 10 mg/mL)"),
			col("strength_per_unit", TypeString, "o.strength_per_unit", "its UCUM unit"),
			col("route_system", TypeString, "o.route_system", "the route's code system"),
			col("route_code", TypeString, "o.route_code", "the route's code (SNOMED CT 47625008 is intravenous)"),
			col("route_display", TypeString, "o.route_display", "the route's display"),
			col("setting", TypeString, "o.setting", "clinic or home, from the order's category"),
			col("dose_value", TypeDouble, "o.dose_value", "the dose per session"),
			col("dose_unit", TypeString, "o.dose_unit", "its UCUM unit (mg, mg/kg, ...)"),
			col("dose_low", TypeDouble, "o.dose_low", "the low end of a dose range"),
			col("dose_high", TypeDouble, "o.dose_high", "the high end of a dose range"),
			col("dose_range_unit", TypeString, "o.dose_range_unit", "the UCUM unit of dose_low and dose_high"),
			col("rate_value", TypeDouble, "o.rate_value", "the infusion rate"),
			col("rate_unit", TypeString, "o.rate_unit", "its UCUM unit (mg/h, mg/kg/h, mL/h, ...)"),
			col("rate_low", TypeDouble, "o.rate_low", "the low end of a rate range"),
			col("rate_high", TypeDouble, "o.rate_high", "the high end of a rate range"),
			col("rate_range_unit", TypeString, "o.rate_range_unit", "the UCUM unit of rate_low and rate_high"),
			col("weight_based", TypeBoolean, "o.weight_based", "the dose or rate is per kg of body weight"),
			col("as_needed", TypeBoolean, "o.as_needed", "asNeeded (PRN)"),
			col("duration_minutes", TypeDouble, "o.duration_minutes", "the planned duration of a session, in minutes"),
			col("frequency", TypeInteger, "o.frequency", "timing: sessions per period"),
			col("period", TypeDouble, "o.period", "timing: the period"),
			col("period_unit", TypeString, "o.period_unit", "timing: the period's unit (h, d, wk, mo)"),
			col("interval_hours", TypeDouble, "o.interval_hours", "hours between sessions, from frequency and period"),
			col("sessions", TypeInteger, "o.sessions", "the number of sessions planned (timing count)"),
			col("bounds_start", TypeTimestamp, "o.bounds_start", "the start of the timing bounds"),
			col("bounds_end", TypeTimestamp, "o.bounds_end", "the end of the timing bounds"),
			col("max_dose_per_admin_value", TypeDouble, "o.max_dose_per_admin_value", "the maximum dose per session"),
			col("max_dose_per_admin_unit", TypeString, "o.max_dose_per_admin_unit", "its UCUM unit"),
			col("max_dose_lifetime_value", TypeDouble, "o.max_dose_lifetime_value", "the maximum dose over the course"),
			col("max_dose_lifetime_unit", TypeString, "o.max_dose_lifetime_unit", "its UCUM unit"),
			col("validity_start", TypeTimestamp, "o.validity_start", "the start of the dispense validity period"),
			col("validity_end", TypeTimestamp, "o.validity_end", "the end of the dispense validity period"),
			col("supply_days", TypeDouble, "o.supply_days", "the expected supply duration, in days"),
			col("dispense_quantity_value", TypeDouble, "o.dispense_quantity_value", "the quantity to dispense"),
			col("dispense_quantity_unit", TypeString, "o.dispense_quantity_unit", "its unit"),
			col("condition_system", TypeString, "ci.system", "the code system of the first coded indication (reasonCode)"),
			col("condition_code", TypeString, "ci.code", "the code of the first coded indication"),
			col("condition_display", TypeString, "ci.display", "the display of the first coded indication"),
			col("conditions", TypeString, "(SELECT group_concat("+tokenSQL("i.system", "i.code")+", ' ' ORDER BY i.rowid) FROM order_indications i WHERE i.order_id = o.id AND i.code IS NOT NULL)",
				"every coded indication as system|code (the code alone when it has no system), in order, separated by spaces"),
			col("condition_references", TypeString, "(SELECT group_concat(i.reference, ' ' ORDER BY i.rowid) FROM order_indications i WHERE i.order_id = o.id AND i.reference IS NOT NULL)",
				"every reasonReference (Condition/{id}), separated by spaces"),
			col("ingredients", TypeString, "(SELECT group_concat("+tokenSQL("g.system", "g.code")+", ' ' ORDER BY g.position) FROM order_ingredients g WHERE g.order_id = o.id AND g.code IS NOT NULL)",
				"the codes of a contained Medication's ingredients as system|code, separated by spaces"),
		}),
		cohort: func(b *builder, f outcomes.Filter) string {
			return "(o.id IN (" + b.courseOrders(f) + ") OR o.drug_class = " + b.arg(string(mapping.ClassOpioid)) +
				" AND o.patient IN (" + b.cohortPatients(f) + "))"
		},
	},
	{
		name: "administrations",
		from: "infusion_administrations a LEFT JOIN administration_reasons sr ON sr.rowid = " +
			"(SELECT min(r.rowid) FROM administration_reasons r WHERE r.administration_id = a.id AND r.code IS NOT NULL)",
		order: "a.id",
		columns: slices.Concat([]Column{
			col("administration_id", TypeString, "a.id", "the MedicationAdministration id"),
			col("version", TypeInteger, "a.version", "its current version (meta.versionId)"),
			col("order_id", TypeString, "a.order_id", "the id of the MedicationRequest it carries out (request)"),
		}, patientColumns("a.patient"), []Column{
			col("status", TypeString, "a.status", "completed, stopped, not-done, in-progress, ..."),
			col("status_reason_system", TypeString, "sr.system", "the code system of the first coded statusReason"),
			col("status_reason_code", TypeString, "sr.code", "the code of the first coded statusReason (why stopped or not done)"),
			col("status_reason_display", TypeString, "sr.display", "the display of the first coded statusReason"),
			col("status_reasons", TypeString, "(SELECT group_concat("+tokenSQL("r.system", "r.code")+", ' ' ORDER BY r.rowid) FROM administration_reasons r WHERE r.administration_id = a.id AND r.code IS NOT NULL)",
				"every coded statusReason as system|code, in order, separated by spaces"),
			col("start_time", TypeTimestamp, "a.start", "the start of the session (effective[x])"),
			col("end_time", TypeTimestamp, "a.end", "the end of the session (the start when effectiveDateTime)"),
			col("duration_minutes", TypeDouble, "round((julianday(a.end) - julianday(a.start)) * 1440, 3)", "end_time - start_time, in minutes"),
		}, drugColumns("a"), []Column{
			col("route_system", TypeString, "a.route_system", "the route's code system"),
			col("route_code", TypeString, "a.route_code", "the route's code"),
			col("setting", TypeString, "a.setting", "clinic or home, from the category"),
			col("dose_value", TypeDouble, "a.dose_value", "the dose given"),
			col("dose_unit", TypeString, "a.dose_unit", "its UCUM unit"),
			col("rate_value", TypeDouble, "a.rate_value", "the rate run"),
			col("rate_unit", TypeString, "a.rate_unit", "its UCUM unit"),
		}),
		cohort: func(b *builder, f outcomes.Filter) string {
			return "a.order_id IN (" + b.courseOrders(f) + ")"
		},
	},
	{
		name:  "assessments",
		from:  "assessments s",
		order: "s.observation_id, s.idx",
		columns: slices.Concat([]Column{
			col("observation_id", TypeString, "s.observation_id", "the Observation id"),
			col("idx", TypeInteger, "s.idx", "0 for the Observation's own value, i+1 for component i"),
			col("version", TypeInteger, "s.version", "the Observation's current version (meta.versionId)"),
		}, patientColumns("s.patient"), []Column{
			col("status", TypeString, "s.status", "Observation.status"),
			col("kind", TypeString, "s.kind", "pain, vital-sign, side-effect, drug-level or other"),
			col("category", TypeString, "s.category", "the first observation-category code"),
			col("code_system", TypeString, "s.system", "the code system of what is measured (LOINC preferred)"),
			col("code", TypeString, "s.code", "the code of what is measured"),
			col("code_display", TypeString, "s.display", "its display"),
			col("value", TypeDouble, "s.value", "a numeric value (valueQuantity, valueInteger)"),
			col("unit", TypeString, "s.unit", "its UCUM unit"),
			col("value_system", TypeString, "s.value_system", "a coded value's system (valueCodeableConcept)"),
			col("value_code", TypeString, "s.value_code", "a coded value's code"),
			col("value_display", TypeString, "s.value_display", "a coded value's display"),
			col("value_boolean", TypeBoolean, "s.value_bool", "a valueBoolean"),
			col("value_text", TypeString, "s.value_text", "a valueString"),
			col("effective", TypeTimestamp, "s.effective", "when it was taken (the start of effectivePeriod)"),
			col("effective_end", TypeTimestamp, "s.effective_end", "the end of effectivePeriod (effective otherwise)"),
			col("administration_id", TypeString, "s.administration_id", "the MedicationAdministration it is part of (partOf)"),
		}),
		cohort: func(b *builder, f outcomes.Filter) string {
			return "s.patient IN (" + b.cohortPatients(f) + ")"
		},
	},
	{
		name:  "findings",
		from:  "findings f",
		order: "f.id",
		columns: slices.Concat([]Column{
			col("finding_id", TypeString, "f.id", "the DetectedIssue id"),
			col("version", TypeInteger, "f.version", "its current version (meta.versionId)"),
			col("owner", TypeString, "f.owner", "the resource whose check raised it (Type/{id})"),
			col("key", TypeString, "f.key", "which problem it is (resource, rule, element)"),
			col("rule", TypeString, "f.rule", "the protocol rule"),
			col("status", TypeString, "f.status", "final while open, cancelled once closed"),
			col("severity", TypeString, "f.severity", "high, moderate or low"),
			col("code", TypeString, "f.code", "the DetectedIssue code (ActCode)"),
		}, patientColumns("f.patient"), []Column{
			col("identified", TypeTimestamp, "f.identified", "when it was found"),
			col("protocol", TypeString, "f.protocol", "the protocol whose rule found it"),
			col("implicated", TypeString, "(SELECT group_concat(j.value, ' ') FROM json_each(f.implicated) j)",
				"every resource it implicates (Type/{id}), the owner first, separated by spaces"),
		}),
		cohort: func(b *builder, f outcomes.Filter) string {
			return "f.patient IN (" + b.cohortPatients(f) + ")"
		},
	},
}

// TableNames returns the names of the flat tables.
func TableNames() []string {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	return names
}

// TableColumns returns the columns of a flat table, in order; nil when
// there is no table of that name.
func TableColumns(name string) []Column {
	t, ok := tableNamed(name)
	if !ok {
		return nil
	}
	return slices.Clone(t.columns)
}

func tableNamed(name string) (table, bool) {
	i := slices.IndexFunc(tables, func(t table) bool { return t.name == name })
	if i < 0 {
		return table{}, false
	}
	return tables[i], true
}

// filtered reports whether f selects anything less than every course.
func filtered(f outcomes.Filter) bool {
	return len(f.DrugClasses)+len(f.Medications)+len(f.Conditions)+len(f.Settings) > 0 || !f.From.IsZero() || !f.To.IsZero()
}

// Table calls fn with each row of the flat table name, in the order of its
// model table's key, streamed from one query. The values of a row are, by
// column type (TableColumns), string, float64, int64, bool or time.Time
// (UTC), or nil when missing. The row is reused: it is valid only during
// the call. An error from fn stops the rows and is returned.
//
// With no filter every row is written. With one, f selects a cohort of
// courses: orders are its course orders and the opioid orders of its
// patients; administrations are those of its course orders; assessments
// and findings are those of its patients.
func (s *Store) Table(ctx context.Context, name string, f outcomes.Filter, fn func(row []any) error) error {
	t, ok := tableNamed(name)
	if !ok {
		return errorf(ENotFound, "there is no table %q: the tables are %s", name, strings.Join(TableNames(), ", "))
	}
	var b builder
	exprs := make([]string, len(t.columns))
	for i, c := range t.columns {
		exprs[i] = c.sql
	}
	query := "SELECT " + strings.Join(exprs, ", ") + " FROM " + t.from
	if filtered(f) {
		query += " WHERE " + t.cohort(&b, f)
	}
	query += " ORDER BY " + t.order
	rows, err := s.read.QueryContext(ctx, query, b.args...)
	if err != nil {
		return fmt.Errorf("store: reading the %s table: %w", name, err)
	}
	defer rows.Close()
	raw := make([]any, len(t.columns))
	dest := make([]any, len(t.columns))
	for i := range raw {
		dest[i] = &raw[i]
	}
	row := make([]any, len(t.columns))
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("store: reading the %s table: %w", name, err)
		}
		for i, c := range t.columns {
			if row[i], err = tableValue(c.Type, raw[i]); err != nil {
				return fmt.Errorf("store: reading the %s table, column %s: %w", name, c.Name, err)
			}
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: reading the %s table: %w", name, err)
	}
	return nil
}

// tableValue converts a value read from SQLite to the Go type of a column
// type; nil stays nil.
func tableValue(typ ColumnType, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case TypeString:
		switch v := v.(type) {
		case string:
			return v, nil
		case []byte:
			return string(v), nil
		}
		return fmt.Sprint(v), nil
	case TypeDouble:
		switch v := v.(type) {
		case float64:
			return v, nil
		case int64:
			return float64(v), nil
		}
	case TypeInteger:
		switch v := v.(type) {
		case int64:
			return v, nil
		case float64:
			return int64(v), nil
		}
	case TypeBoolean:
		switch v := v.(type) {
		case int64:
			return v != 0, nil
		case bool:
			return v, nil
		}
	case TypeTimestamp:
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		case time.Time:
			return v.UTC(), nil
		default:
			return nil, fmt.Errorf("%T is not a time", v)
		}
		t, err := time.Parse(timeLayout, s)
		if err != nil {
			if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return nil, fmt.Errorf("%q is not a time: %w", s, err)
			}
		}
		return t.UTC(), nil
	}
	return nil, fmt.Errorf("%T is not a %s", v, typ)
}
