package server

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"infusion/fhir"
	"infusion/mapping/outcomes"
	"infusion/store"
)

// GET /$infusion-tables/{table}: the flat tables of the infusion model
// (orders, administrations, assessments, findings) for analysts, in CSV,
// NDJSON or Parquet, streamed from one query. The columns of each table
// are defined once in the store (store.TableColumns); one writer per format
// renders any table from them.

// tableStore is the part of the Store that reads the flat tables.
type tableStore interface {
	Table(ctx context.Context, name string, f outcomes.Filter, fn func(row []any) error) error
}

const (
	// tableFlushRows is how many CSV or NDJSON rows are written between
	// flushes to the client.
	tableFlushRows = 1000
	// tableBufferSize is the write buffer before the response.
	tableBufferSize = 64 << 10
	// tableRowGroupRows bounds a Parquet row group, and so the memory a
	// Parquet answer holds: one row group is buffered at a time.
	tableRowGroupRows = 1 << 16
)

// tableContentTypes are the content types of the table formats.
var tableContentTypes = map[string]string{
	formatCSV:     "text/csv; charset=utf-8",
	formatNDJSON:  "application/x-ndjson",
	formatParquet: "application/vnd.apache.parquet",
}

// infusionTables answers GET /$infusion-tables/:table.
func (s *Server) infusionTables(c echo.Context) error {
	name := c.Param("table")
	columns := store.TableColumns(name)
	if columns == nil {
		return fhir.Errorf(fhir.KindNotFound, fhir.IssueNotFound, "",
			"there is no table %q: the tables are %s", name, strings.Join(store.TableNames(), ", "))
	}
	f, _, err := outcomes.ParseFilter(c.QueryParams(), false, "_format", "_pretty")
	if err != nil {
		return err
	}
	format, err := tabularFormat(c, formatCSV, formatNDJSON, formatParquet)
	if err != nil {
		return err
	}
	out := &lazyResponse{c: c, contentType: tableContentTypes[format], filename: name + "." + format}
	w, err := newTableWriter(format, name, columns, out)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	err = s.store.Table(ctx, name, f, w.row)
	if err == nil {
		err = w.close()
	}
	switch {
	case err == nil:
		out.start() // an empty NDJSON answer has written nothing
		return nil
	case !c.Response().Committed:
		// Nothing has reached the client: an OperationOutcome.
		return err
	case ctx.Err() != nil:
		return nil // the client went away
	default:
		// Part of the table has been sent: break the connection rather
		// than end the answer as if it were whole.
		s.log.LogAttrs(ctx, slog.LevelError, "table answer broken off",
			slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			slog.String("table", name), slog.String("error", err.Error()))
		panic(http.ErrAbortHandler)
	}
}

// lazyResponse writes to the response, setting its headers and status 200
// at the first write: until then an error can still be answered with an
// OperationOutcome.
type lazyResponse struct {
	c                     echo.Context
	contentType, filename string
	started               bool
}

func (l *lazyResponse) Write(p []byte) (int, error) {
	l.start()
	return l.c.Response().Write(p)
}

// start sends the headers and status 200, once.
func (l *lazyResponse) start() {
	if l.started {
		return
	}
	l.started = true
	res := l.c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, l.contentType)
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+l.filename+`"`)
	res.WriteHeader(http.StatusOK)
}

// flush sends what has been written to the client.
func (l *lazyResponse) flush() {
	if l.started {
		l.c.Response().Flush()
	}
}

// tableWriter renders the rows of a table in one format.
type tableWriter interface {
	row(values []any) error
	// close writes what is left (the header of an empty CSV, Parquet's
	// footer) and flushes.
	close() error
}

func newTableWriter(format, name string, columns []store.Column, out *lazyResponse) (tableWriter, error) {
	switch format {
	case formatCSV:
		return newCSVTable(columns, out), nil
	case formatNDJSON:
		return newNDJSONTable(columns, out), nil
	case formatParquet:
		return newParquetTable(name, columns, out)
	}
	return nil, fmt.Errorf("no table writer for %s", format)
}

// formatTableTime is how CSV and NDJSON write a timestamp: RFC 3339, UTC,
// milliseconds.
func formatTableTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// appendTableFloat writes a double as JSON numbers are written: plain
// decimals, exponents only for the very large and very small.
func appendTableFloat(b []byte, v float64) []byte {
	format := byte('f')
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, v, format, -1, 64)
}

// csvTable writes RFC 4180 CSV (CRLF line ends, fields quoted when they
// hold a comma, quote or line end): a header row of the column names, then
// one record per row; a missing value is an empty cell.
type csvTable struct {
	out     *lazyResponse
	buf     *bufio.Writer
	w       *csv.Writer
	record  []string
	scratch []byte
	header  bool
	n       int
	columns []store.Column
}

func newCSVTable(columns []store.Column, out *lazyResponse) *csvTable {
	buf := bufio.NewWriterSize(out, tableBufferSize)
	w := csv.NewWriter(buf)
	w.UseCRLF = true // RFC 4180
	return &csvTable{out: out, buf: buf, w: w, record: make([]string, len(columns)), columns: columns}
}

func (t *csvTable) writeHeader() error {
	t.header = true
	for i, c := range t.columns {
		t.record[i] = c.Name
	}
	return t.w.Write(t.record)
}

func (t *csvTable) row(values []any) error {
	if !t.header {
		if err := t.writeHeader(); err != nil {
			return err
		}
	}
	for i, v := range values {
		t.record[i] = t.cell(v)
	}
	if err := t.w.Write(t.record); err != nil {
		return err
	}
	if t.n++; t.n%tableFlushRows == 0 {
		return t.flush()
	}
	return nil
}

func (t *csvTable) cell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ""
		}
		t.scratch = appendTableFloat(t.scratch[:0], v)
		return string(t.scratch)
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return formatTableTime(v)
	}
	return fmt.Sprint(v)
}

func (t *csvTable) flush() error {
	t.w.Flush()
	if err := t.w.Error(); err != nil {
		return err
	}
	if err := t.buf.Flush(); err != nil {
		return err
	}
	t.out.flush()
	return nil
}

func (t *csvTable) close() error {
	if !t.header {
		if err := t.writeHeader(); err != nil {
			return err
		}
	}
	return t.flush()
}

// ndjsonTable writes one JSON object per line, its keys the column names
// in order; a missing value is null.
type ndjsonTable struct {
	out  *lazyResponse
	buf  *bufio.Writer
	keys [][]byte // `"name":`, with the comma before all but the first
	line []byte
	n    int
}

func newNDJSONTable(columns []store.Column, out *lazyResponse) *ndjsonTable {
	t := &ndjsonTable{out: out, buf: bufio.NewWriterSize(out, tableBufferSize)}
	for i, c := range columns {
		var key []byte
		if i > 0 {
			key = append(key, ',')
		}
		key, _ = jsontext.AppendQuote(key, c.Name)
		t.keys = append(t.keys, append(key, ':'))
	}
	return t
}

func (t *ndjsonTable) row(values []any) error {
	b := append(t.line[:0], '{')
	for i, v := range values {
		b = append(b, t.keys[i]...)
		switch v := v.(type) {
		case nil:
			b = append(b, "null"...)
		case string:
			// Invalid UTF-8 is written as U+FFFD; the error only says so.
			b, _ = jsontext.AppendQuote(b, v)
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				b = append(b, "null"...)
			} else {
				b = appendTableFloat(b, v)
			}
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case time.Time:
			b = append(b, '"')
			b = v.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
			b = append(b, '"')
		default:
			return fmt.Errorf("a table value of type %T", v)
		}
	}
	b = append(b, '}', '\n')
	t.line = b
	if _, err := t.buf.Write(b); err != nil {
		return err
	}
	if t.n++; t.n%tableFlushRows == 0 {
		return t.flush()
	}
	return nil
}

func (t *ndjsonTable) flush() error {
	if err := t.buf.Flush(); err != nil {
		return err
	}
	t.out.flush()
	return nil
}

func (t *ndjsonTable) close() error { return t.flush() }

// parquetTable writes a Parquet file straight to the response: the writer
// buffers one row group (at most tableRowGroupRows rows) at a time, and
// writes the footer on close. Every column is optional; strings are UTF8,
// integers INT64, doubles DOUBLE, booleans BOOLEAN and timestamps
// TIMESTAMP(MILLIS, UTC).
type parquetTable struct {
	w    *parquet.Writer
	rows []parquet.Row
}

func newParquetTable(name string, columns []store.Column, out io.Writer) (*parquetTable, error) {
	node, err := parquetSchema(columns)
	if err != nil {
		return nil, err
	}
	config, err := parquet.NewWriterConfig(parquet.NewSchema(name, node),
		parquet.MaxRowsPerRowGroup(tableRowGroupRows),
		parquet.Compression(&parquet.Snappy))
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	config.CreatedBy = Software + " version " + Version
	return &parquetTable{w: parquet.NewWriter(out, config), rows: []parquet.Row{make(parquet.Row, len(columns))}}, nil
}

func (t *parquetTable) row(values []any) error {
	row := t.rows[0]
	for i, v := range values {
		var pv parquet.Value
		switch v := v.(type) {
		case nil:
			row[i] = parquet.NullValue().Level(0, 0, i)
			continue
		case string:
			pv = parquet.ValueOf(v)
		case float64:
			pv = parquet.DoubleValue(v)
		case int64:
			pv = parquet.Int64Value(v)
		case bool:
			pv = parquet.BooleanValue(v)
		case time.Time:
			pv = parquet.Int64Value(v.UnixMilli())
		default:
			return fmt.Errorf("a table value of type %T", v)
		}
		row[i] = pv.Level(0, 1, i)
	}
	if _, err := t.w.WriteRows(t.rows); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	return nil
}

func (t *parquetTable) close() error {
	if err := t.w.Close(); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	return nil
}

// parquetSchema is the root of the Parquet schema of a table: its columns
// in their order, each optional.
func parquetSchema(columns []store.Column) (parquet.Node, error) {
	var fields []parquet.Field
	for _, c := range columns {
		var leaf parquet.Node
		switch c.Type {
		case store.TypeString:
			leaf = parquet.String()
		case store.TypeDouble:
			leaf = parquet.Leaf(parquet.DoubleType)
		case store.TypeInteger:
			leaf = parquet.Int(64)
		case store.TypeBoolean:
			leaf = parquet.Leaf(parquet.BooleanType)
		case store.TypeTimestamp:
			leaf = parquet.Timestamp(parquet.Millisecond)
		default:
			return nil, fmt.Errorf("column %s: no Parquet type for %s", c.Name, c.Type)
		}
		fields = append(fields, orderedField{Node: parquet.Optional(leaf), name: c.Name, index: len(fields)})
	}
	return orderedGroup(fields), nil
}

// orderedGroup is a Parquet group whose fields keep their order
// (parquet.Group sorts them by name).
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return printNode(g) }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return goTypeOf(g) }

// orderedField is a named field of an orderedGroup.
type orderedField struct {
	parquet.Node
	name  string
	index int
}

func (f orderedField) Name() string { return f.name }

// Value returns the field of a value of the group's GoType. (Rows are
// written as parquet.Row values, not deconstructed from Go values.)
func (f orderedField) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Kind() == reflect.Struct && f.index < base.NumField() {
		return base.Field(f.index)
	}
	return reflect.Value{}
}

// goTypeOf is the struct type of a group's fields.
func goTypeOf(g orderedGroup) reflect.Type {
	fields := make([]reflect.StructField, len(g))
	for i, f := range g {
		fields[i] = reflect.StructField{Name: "F" + strconv.Itoa(i), Type: f.GoType(), Tag: reflect.StructTag(`parquet:"` + f.Name() + `"`)}
	}
	return reflect.StructOf(fields)
}

func printNode(n parquet.Node) string {
	var b strings.Builder
	if err := parquet.PrintSchema(&b, "table", n); err != nil {
		return err.Error()
	}
	return b.String()
}
