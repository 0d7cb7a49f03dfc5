package kit_test

import (
	"bytes"
	"strings"
	"testing"

	"infusion/conformance/kit"
)

var progressChecks = []kit.Check{
	{ID: "rest.create.status", Resource: "Observation", Level: kit.Shall, Status: kit.Pass},
	{ID: "rest.update.etag", Resource: "Observation", Level: kit.Shall, Status: kit.Fail, Reason: "no ETag"},
	{ID: "rest.read.if-none-match", Resource: "Observation", Level: kit.May, Status: kit.Skip, Reason: "not declared"},
}

func TestProgressNotATerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := kit.NewProgress(&buf)
	for _, c := range progressChecks {
		p.Check(c)
	}
	p.Done()
	want := "PASS SHALL  rest.create.status [Observation]\n" +
		"FAIL SHALL  rest.update.etag [Observation]: no ETag\n" +
		"SKIP MAY    rest.read.if-none-match [Observation]: not declared\n"
	if got := buf.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestProgressTerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := kit.NewTerminalProgress(&buf, 40)
	for _, c := range progressChecks {
		p.Check(c)
	}
	p.Done()
	got := buf.String()
	want := "[   1] rest.create.status [Observation]" +
		"\r\x1b[KFAIL SHALL  rest.update.etag [Observation]: no ETag\n[   2, 1 failed] rest.update.etag [Obs…" +
		"\r\x1b[K[   3, 1 failed] rest.read.if-none-mat…" +
		"\r\x1b[K"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if strings.Contains(got, "PASS") || strings.Contains(got, "SKIP") {
		t.Error("the terminal form printed a passed or skipped check as a line")
	}
}
