package server_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"infusion/server"
	"infusion/store"
)

// table is a flat table as read back from one answer: its column names
// and its rows as CSV cells ("" for a missing value).
type table struct {
	columns []string
	types   []string // Parquet only: the columns' types, as store.ColumnType names
	rows    [][]string
}

// column returns the cells of one column.
func (tb table) column(t *testing.T, name string) []string {
	t.Helper()
	i := slices.Index(tb.columns, name)
	if i < 0 {
		t.Fatalf("no column %s in %v", name, tb.columns)
	}
	out := make([]string, len(tb.rows))
	for r, row := range tb.rows {
		out[r] = row[i]
	}
	return out
}

// get fetches a table in a format and reads it back.
func (ts *testServer) table(t *testing.T, name, format, query string) table {
	t.Helper()
	path := "/$infusion-tables/" + name + "?_format=" + format
	if query != "" {
		path += "&" + query
	}
	r := ts.do(t, http.MethodGet, path, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	want := map[string]string{"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}[format]
	if ct := r.header.Get("Content-Type"); ct != want {
		t.Errorf("GET %s: Content-Type %q, want %q", path, ct, want)
	}
	if cd, want := r.header.Get("Content-Disposition"), `attachment; filename="`+name+"."+format+`"`; cd != want {
		t.Errorf("GET %s: Content-Disposition %q, want %q", path, cd, want)
	}
	switch format {
	case "csv":
		return readCSVTable(t, r.body)
	case "ndjson":
		return readNDJSONTable(t, r.body, store.TableColumns(name))
	}
	return readParquetTable(t, r.body)
}

func readCSVTable(t *testing.T, body []byte) table {
	t.Helper()
	if len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
		t.Errorf("CSV does not end with CRLF: %q", body[max(0, len(body)-20):])
	}
	records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(records) == 0 {
		t.Fatalf("CSV: %v (%d records)\n%.500s", err, len(records), body)
	}
	return table{columns: records[0], rows: records[1:]}
}

// readNDJSONTable reads one JSON object per line, checking that its keys
// are the columns in order, and renders its values as CSV cells.
func readNDJSONTable(t *testing.T, body []byte, columns []store.Column) table {
	t.Helper()
	var tb table
	for _, c := range columns {
		tb.columns = append(tb.columns, c.Name)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("NDJSON line is not an object: %s", sc.Bytes())
		}
		var row []string
		for i := 0; dec.More(); i++ {
			key, err := dec.Token()
			if err != nil || i >= len(columns) || key != columns[i].Name {
				t.Fatalf("NDJSON key %d is %v, want %s: %s", i, key, tb.columns, sc.Bytes())
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			switch v := v.(type) {
			case nil:
				row = append(row, "")
			case string:
				row = append(row, v)
			case json.Number:
				row = append(row, v.String())
			case bool:
				row = append(row, strconv.FormatBool(v))
			default:
				t.Fatalf("NDJSON value %v of type %T", v, v)
			}
			if want := columns[i].Type; !jsonTypeOK(want, v) {
				t.Errorf("NDJSON %s = %v (%T), want a %s", columns[i].Name, v, v, want)
			}
		}
		if len(row) != len(columns) {
			t.Fatalf("NDJSON line has %d values, want %d: %s", len(row), len(columns), sc.Bytes())
		}
		tb.rows = append(tb.rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return tb
}

func jsonTypeOK(typ store.ColumnType, v any) bool {
	switch v.(type) {
	case nil:
		return true
	case string:
		return typ == store.TypeString || typ == store.TypeTimestamp
	case json.Number:
		return typ == store.TypeDouble || typ == store.TypeInteger
	case bool:
		return typ == store.TypeBoolean
	}
	return false
}

// readParquetTable reads a Parquet file with parquet-go and renders its
// values as the CSV answer writes them.
func readParquetTable(t *testing.T, body []byte) table {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("Parquet: %v", err)
	}
	var tb table
	for _, field := range f.Schema().Fields() {
		if !field.Optional() {
			t.Errorf("Parquet column %s is not optional", field.Name())
		}
		tb.columns = append(tb.columns, field.Name())
		tb.types = append(tb.types, parquetType(field))
	}
	for _, rg := range f.RowGroups() {
		if rg.NumRows() > 1<<16 {
			t.Errorf("a row group of %d rows", rg.NumRows())
		}
		rows := rg.Rows()
		buf := make([]parquet.Row, 64)
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				cells := make([]string, len(tb.columns))
				for _, v := range row {
					cells[v.Column()] = parquetCell(tb.types[v.Column()], v)
				}
				tb.rows = append(tb.rows, cells)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
	}
	if int64(len(tb.rows)) != f.NumRows() {
		t.Errorf("Parquet: read %d rows, the footer says %d", len(tb.rows), f.NumRows())
	}
	return tb
}

// parquetType names the type of a Parquet column as store.ColumnType does;
// anything else (a timestamp not in UTC milliseconds) by its Parquet name.
func parquetType(n parquet.Node) string {
	typ := n.Type()
	var logical any
	if lt := typ.LogicalType(); lt != nil {
		logical = lt.Value
	}
	switch lt := logical.(type) {
	case *format.StringType:
		return string(store.TypeString)
	case *format.TimestampType:
		if _, millis := lt.Unit.Value.(*format.MilliSeconds); lt.IsAdjustedToUTC && millis {
			return string(store.TypeTimestamp)
		}
		return lt.String()
	}
	switch {
	case typ.Kind() == parquet.Double:
		return string(store.TypeDouble)
	case typ.Kind() == parquet.Int64:
		return string(store.TypeInteger)
	case typ.Kind() == parquet.Boolean:
		return string(store.TypeBoolean)
	}
	return typ.String()
}

func parquetCell(typ string, v parquet.Value) string {
	if v.IsNull() {
		return ""
	}
	switch store.ColumnType(typ) {
	case store.TypeDouble:
		return strconv.FormatFloat(v.Double(), 'f', -1, 64)
	case store.TypeInteger:
		return strconv.FormatInt(v.Int64(), 10)
	case store.TypeBoolean:
		return strconv.FormatBool(v.Boolean())
	case store.TypeTimestamp:
		return time.UnixMilli(v.Int64()).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return v.String()
}

var tableNames = []string{"orders", "administrations", "assessments", "findings"}

// loadTablesData stores generated patients and an order that raises a
// finding, and returns the number of model rows of each table, counted
// from the stored resources.
func loadTablesData(t *testing.T, ts *testServer, patients int) map[string]int {
	t.Helper()
	ts.loadSynth(t, 0, patients)
	ts.create(t, "MedicationRequest", example(t, "valid/medicationrequest-gabapentin-iv.json")) // raises a finding
	assessments := 0
	for _, obs := range ts.searched(t, "Observation", "") {
		assessments += 1 + len(asList(obs["component"]))
	}
	return map[string]int{
		"orders":          len(ts.searched(t, "MedicationRequest", "")),
		"administrations": len(ts.searched(t, "MedicationAdministration", "")),
		"assessments":     assessments,
		"findings":        len(ts.searched(t, "DetectedIssue", "")),
	}
}

// searched returns the resources a search on a type finds, every page.
func (ts *testServer) searched(t *testing.T, typ, query string) []map[string]any {
	t.Helper()
	var out []map[string]any
	path := "/" + typ + "?_count=1000&" + query
	for path != "" {
		b := ts.do(t, http.MethodGet, path, "").json(t)
		for _, e := range asList(b["entry"]) {
			out = append(out, e.(map[string]any)["resource"].(map[string]any))
		}
		path = ""
		for _, l := range asList(b["link"]) {
			if l := l.(map[string]any); l["relation"] == "next" {
				path = strings.TrimPrefix(l["url"].(string), ts.URL)
			}
		}
	}
	return out
}

var utcMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// TestTables reads every table in every format: as many rows as the model
// holds, the documented columns, the same values in each format, times in
// UTC.
func TestTables(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	want := loadTablesData(t, ts, 6)
	t.Logf("rows: %v", want)
	var listing strings.Builder
	for _, name := range tableNames {
		columns := store.TableColumns(name)
		var names []string
		for _, c := range columns {
			names = append(names, c.Name)
			fmt.Fprintf(&listing, "%s %s %s\n", name, c.Name, c.Type)
		}
		if want[name] == 0 {
			t.Fatalf("no %s stored: the test data lacks them", name)
		}
		var csvTable table
		for _, format := range []string{"csv", "ndjson", "parquet"} {
			t.Run(name+"/"+format, func(t *testing.T) {
				tb := ts.table(t, name, format, "")
				if !slices.Equal(tb.columns, names) {
					t.Fatalf("columns %v, want %v", tb.columns, names)
				}
				if len(tb.rows) != want[name] {
					t.Errorf("%d rows, want %d", len(tb.rows), want[name])
				}
				for i, c := range columns {
					if tb.types != nil && tb.types[i] != string(c.Type) {
						t.Errorf("Parquet column %s is %s, want %s", c.Name, tb.types[i], c.Type)
					}
					if c.Type != store.TypeTimestamp {
						continue
					}
					for _, v := range tb.column(t, c.Name) {
						if v != "" && !utcMillis.MatchString(v) {
							t.Errorf("%s = %q is not UTC with milliseconds", c.Name, v)
						}
					}
				}
				if format == "csv" {
					csvTable = tb
					return
				}
				// The same values as the CSV answer, row by row.
				for r := range min(len(tb.rows), len(csvTable.rows)) {
					for i, c := range columns {
						if got, want := tb.rows[r][i], csvTable.rows[r][i]; got != want {
							t.Fatalf("row %d %s = %q, CSV says %q", r, c.Name, got, want)
						}
					}
				}
			})
		}
	}
	golden(t, "tables", "columns.txt", listing.String())
}

// TestTablesValues checks the folded and derived columns against the
// resources they come from.
func TestTablesValues(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	id := ts.create(t, "MedicationRequest", example(t, "valid/medicationrequest-gabapentin-iv.json"))
	orders := ts.table(t, "orders", "csv", "")
	row := map[string]string{}
	for i, c := range orders.columns {
		row[c] = orders.rows[0][i]
	}
	for k, v := range map[string]string{
		"order_id": id, "patient": "Patient/pat-fm-1", "patient_id": "pat-fm-1", "drug_class": "gabapentinoid",
		"dose_value": "300", "dose_unit": "mg", "weight_based": "false", "authored_on": "2024-05-06T09:00:00.000Z",
		"condition_system": "http://snomed.info/sct", "condition_code": "203082005", "condition_display": "Fibromyalgia",
		"conditions": "http://snomed.info/sct|203082005", "condition_references": "",
	} {
		if row[k] != v {
			t.Errorf("orders %s = %q, want %q", k, row[k], v)
		}
	}
	findings := ts.table(t, "findings", "ndjson", "")
	if len(findings.rows) != 1 {
		t.Fatalf("%d findings, want 1", len(findings.rows))
	}
	if owner := findings.column(t, "owner")[0]; owner != "MedicationRequest/"+id {
		t.Errorf("finding owner %q", owner)
	}
	if implicated := findings.column(t, "implicated")[0]; implicated != "MedicationRequest/"+id {
		t.Errorf("finding implicated %q", implicated)
	}
	// An administration stopped for two reasons, in another time zone.
	ts.do(t, http.MethodPut, "/MedicationAdministration/ma-1", `{"resourceType":"MedicationAdministration","id":"ma-1",
		"status":"stopped","statusReason":[{"coding":[{"system":"http://snomed.info/sct","code":"422587007","display":"Nausea"}]},
		{"coding":[{"system":"http://snomed.info/sct","code":"404640003"}]}],
		"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"6130","display":"ketamine"}]},
		"subject":{"reference":"Patient/p-1"},"request":{"reference":"MedicationRequest/`+id+`"},
		"effectivePeriod":{"start":"2025-03-01T10:00:00+02:00","end":"2025-03-01T11:30:00.250+02:00"},
		"dosage":{"dose":{"value":35.5,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}}}`)
	adm := ts.table(t, "administrations", "parquet", "")
	row = map[string]string{}
	for i, c := range adm.columns {
		row[c] = adm.rows[0][i]
	}
	for k, v := range map[string]string{
		"administration_id": "ma-1", "order_id": id, "patient_id": "p-1", "status": "stopped",
		"status_reason_code": "422587007", "status_reason_display": "Nausea",
		"status_reasons": "http://snomed.info/sct|422587007 http://snomed.info/sct|404640003",
		"start_time":     "2025-03-01T08:00:00.000Z", "end_time": "2025-03-01T09:30:00.250Z", "duration_minutes": "90.004",
		"dose_value": "35.5", "dose_unit": "mg", "drug_class": "ketamine", "rate_value": "",
	} {
		if row[k] != v {
			t.Errorf("administrations %s = %q, want %q", k, row[k], v)
		}
	}
}

// TestTablesFilters checks the cohort filters against the rows each table
// holds unfiltered: orders are the course orders and the cohort patients'
// opioid orders, administrations those of the course orders, assessments
// and findings those of the cohort's patients.
func TestTablesFilters(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	loadTablesData(t, ts, 12)
	all := map[string]table{}
	for _, name := range tableNames {
		all[name] = ts.table(t, name, "csv", "")
	}
	orders, adms := all["orders"], all["administrations"]
	// The start of each order's course: its first session's, else authoredOn.
	start := map[string]string{}
	for i, id := range orders.column(t, "order_id") {
		start[id] = orders.column(t, "authored_on")[i]
	}
	first := map[string]string{}
	for i, order := range adms.column(t, "order_id") {
		if s := adms.column(t, "start_time")[i]; adms.column(t, "status")[i] != "entered-in-error" && (first[order] == "" || s < first[order]) {
			first[order] = s
		}
	}
	for id, s := range first {
		start[id] = s
	}
	anyCondition := ""
	for i, class := range orders.column(t, "drug_class") {
		if class == "lidocaine" && orders.column(t, "condition_code")[i] != "" {
			anyCondition = orders.column(t, "condition_system")[i] + "|" + orders.column(t, "condition_code")[i]
			break
		}
	}
	if anyCondition == "" {
		t.Fatal("no lidocaine order with a condition in the test data")
	}
	infusion := func(class string) bool {
		return slices.Contains([]string{"ketamine", "lidocaine", "gabapentinoid", "vitamin-nutrient"}, class)
	}
	for _, tc := range []struct {
		query  string
		course func(i int) bool // whether orders.rows[i] is a course of the cohort
	}{
		{"drug-class=ketamine", func(i int) bool { return orders.column(t, "drug_class")[i] == "ketamine" }},
		{"drug-class=lidocaine,gabapentinoid", func(i int) bool {
			return slices.Contains([]string{"lidocaine", "gabapentinoid"}, orders.column(t, "drug_class")[i])
		}},
		{"period=ge2025-03-01&period=le2025-08-31", func(i int) bool {
			s := start[orders.column(t, "order_id")[i]]
			return infusion(orders.column(t, "drug_class")[i]) && s >= "2025-03-01" && s <= "2025-08-31T23:59:59.999Z"
		}},
		{"condition=" + anyCondition, func(i int) bool {
			return infusion(orders.column(t, "drug_class")[i]) && slices.Contains(strings.Fields(orders.column(t, "conditions")[i]), anyCondition)
		}},
		{"drug-class=ketamine&setting=home", func(i int) bool { return false }}, // ketamine is given in the clinic
	} {
		t.Run(tc.query, func(t *testing.T) {
			courses, patients := map[string]bool{}, map[string]bool{}
			for i, id := range orders.column(t, "order_id") {
				if tc.course(i) && orders.column(t, "status")[i] != "entered-in-error" {
					courses[id] = true
					patients[orders.column(t, "patient")[i]] = true
				}
			}
			count := func(tb table, keep func(i int) bool) int {
				n := 0
				for i := range tb.rows {
					if keep(i) {
						n++
					}
				}
				return n
			}
			ids, classes, owners := orders.column(t, "order_id"), orders.column(t, "drug_class"), orders.column(t, "patient")
			admOrders := adms.column(t, "order_id")
			want := map[string]int{
				"orders": count(orders, func(i int) bool {
					return courses[ids[i]] || classes[i] == "opioid" && patients[owners[i]]
				}),
				"administrations": count(adms, func(i int) bool { return courses[admOrders[i]] }),
			}
			for _, name := range []string{"assessments", "findings"} {
				of := all[name].column(t, "patient")
				want[name] = count(all[name], func(i int) bool { return patients[of[i]] })
			}
			t.Logf("%d courses of %d patients; want %v", len(courses), len(patients), want)
			if len(courses) > 0 && (want["orders"] == len(orders.rows) || want["assessments"] == 0) {
				t.Fatalf("the filter selects too much or too little to test: %v", want)
			}
			for _, name := range tableNames {
				for _, format := range []string{"csv", "parquet"} {
					got := ts.table(t, name, format, tc.query)
					if len(got.rows) != want[name] {
						t.Errorf("%s.%s: %d rows, want %d", name, format, len(got.rows), want[name])
					}
				}
			}
			if tc.query == "drug-class=ketamine" {
				for _, class := range ts.table(t, "orders", "ndjson", tc.query).column(t, "drug_class") {
					if class != "ketamine" && class != "opioid" {
						t.Errorf("drug-class=ketamine gives a %s order", class)
					}
				}
				for _, class := range ts.table(t, "administrations", "ndjson", tc.query).column(t, "drug_class") {
					if class != "ketamine" {
						t.Errorf("drug-class=ketamine gives a %s administration", class)
					}
				}
			}
		})
	}
}

// TestTablesEmpty: a cohort with no course is a header row (CSV), nothing
// (NDJSON) or a valid Parquet file of no rows.
func TestTablesEmpty(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	ts.loadSynth(t, 0, 2)
	q := "condition=http://example.org|none"
	r := ts.do(t, http.MethodGet, "/$infusion-tables/orders?"+q, "")
	names := []string{}
	for _, c := range store.TableColumns("orders") {
		names = append(names, c.Name)
	}
	if r.status != http.StatusOK || string(r.body) != strings.Join(names, ",")+"\r\n" {
		t.Errorf("empty CSV: %d %q", r.status, r.body)
	}
	if tb := ts.table(t, "assessments", "ndjson", q); len(tb.rows) != 0 {
		t.Errorf("empty NDJSON: %d rows", len(tb.rows))
	}
	for _, name := range tableNames {
		tb := ts.table(t, name, "parquet", q)
		if len(tb.rows) != 0 || len(tb.columns) != len(store.TableColumns(name)) {
			t.Errorf("empty Parquet %s: %d rows, %d columns", name, len(tb.rows), len(tb.columns))
		}
	}
	// An empty database: every table is empty.
	empty := newTestServer(t, server.Config{})
	for _, name := range tableNames {
		if tb := empty.table(t, name, "csv", ""); len(tb.rows) != 0 {
			t.Errorf("%s of an empty database: %d rows", name, len(tb.rows))
		}
	}
}

// TestTablesNegotiation: Accept chooses the format when _format does not.
func TestTablesNegotiation(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	ts.create(t, "MedicationRequest", example(t, "valid/medicationrequest-gabapentin-iv.json"))
	for _, tc := range []struct{ accept, want string }{
		{"", "text/csv; charset=utf-8"},
		{"*/*", "text/csv; charset=utf-8"},
		{"text/csv", "text/csv; charset=utf-8"},
		{"application/x-ndjson", "application/x-ndjson"},
		{"application/vnd.apache.parquet", "application/vnd.apache.parquet"},
		{"application/fhir+json;q=0.5, application/vnd.apache.parquet", "application/vnd.apache.parquet"},
	} {
		var headers []string
		if tc.accept != "" {
			headers = append(headers, "Accept: "+tc.accept)
		}
		r := ts.do(t, http.MethodGet, "/$infusion-tables/orders", "", headers...)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != tc.want {
			t.Errorf("Accept %q: %d %s, want %s", tc.accept, r.status, r.header.Get("Content-Type"), tc.want)
		}
	}
	r := ts.do(t, http.MethodGet, "/$infusion-tables/orders?_format=application/x-ndjson", "", "Accept: text/csv")
	if r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("_format does not take precedence over Accept: %s", r.header.Get("Content-Type"))
	}
}

// TestTablesErrors: bad requests are OperationOutcomes naming the problem.
func TestTablesErrors(t *testing.T) {
	ts := newTestServer(t, server.Config{})
	for _, tc := range []struct {
		path, accept string
		status       int
		says, where  string
	}{
		{"/$infusion-tables/patients", "", 404, "orders, administrations, assessments, findings", ""},
		{"/$infusion-tables/orders?foo=1", "", 400, "foo is not a parameter", "foo"},
		{"/$infusion-tables/orders?drug-class=aspirin", "", 400, "aspirin", "drug-class"},
		{"/$infusion-tables/orders?setting=moon", "", 400, "moon", "setting"},
		{"/$infusion-tables/orders?period=ge2025-06-01&period=le2025-01-01", "", 400, "ends", "period"},
		{"/$infusion-tables/orders?period=2025", "", 400, "period", "period"},
		{"/$infusion-tables/orders?_format=xml", "", 406, "_format=xml", ""},
		{"/$infusion-tables/orders?_format=json", "", 406, "csv, ndjson, parquet", ""},
		{"/$infusion-tables/orders", "application/xml", 406, "Accept", ""},
		{"/$infusion-tables/", "", 404, "", ""},
	} {
		var headers []string
		if tc.accept != "" {
			headers = append(headers, "Accept: "+tc.accept)
		}
		r := ts.do(t, http.MethodGet, tc.path, "", headers...)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.says) {
			t.Errorf("GET %s: %d %s, want %d saying %q", tc.path, r.status, r.body, tc.status, tc.says)
			continue
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") || r.header.Get("Content-Disposition") != "" {
			t.Errorf("GET %s: an error as %s, %s", tc.path, ct, r.header.Get("Content-Disposition"))
		}
		if tc.where != "" && !slices.Contains(r.issueExpressions(t), tc.where) {
			t.Errorf("GET %s: the issue names %v, want %s", tc.path, r.issueExpressions(t), tc.where)
		}
	}
	if r := ts.do(t, http.MethodPost, "/$infusion-tables/orders", ""); r.status != http.StatusMethodNotAllowed && r.status != http.StatusNotFound {
		t.Errorf("POST: %d", r.status)
	}
}

// TestTablesREADME: the README documents every column of every table, with
// its type, as the server writes them.
func TestTablesREADME(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "### Flat tables: $infusion-tables\n")
	if !ok {
		t.Fatal("README: no section ### Flat tables: $infusion-tables")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	for _, name := range tableNames {
		_, block, ok := strings.Cut(section, "**`"+name+"`**\n")
		if !ok {
			t.Errorf("README: no **`%s`** column table", name)
			continue
		}
		block, _, _ = strings.Cut(block, "</details>")
		var want []string
		for _, c := range store.TableColumns(name) {
			want = append(want, fmt.Sprintf("| `%s` | %s |", c.Name, c.Type))
		}
		var got []string
		for _, line := range strings.Split(block, "\n") {
			if strings.HasPrefix(line, "| `") {
				name, typ, _ := strings.Cut(line[2:], " | ")
				typ, _, _ = strings.Cut(typ, " |")
				got = append(got, "| "+name+" | "+typ+" |")
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("README: the %s columns are\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
