package server_test

import (
	"io"
	"testing"
	"time"

	"infusion/server"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{"INFUSION_ADDR": ":9000", "INFUSION_DB": "/data/env.db", "INFUSION_MAX_ENTRIES": "500"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		args []string
		want server.Config
	}{
		{nil, server.Config{Addr: ":9000", DBPath: "/data/env.db", MaxBody: 16 << 20, MaxEntries: 500, Protocol: server.PolicyWarn, ExportTTL: server.DefaultExportTTL}},
		{[]string{"-addr", ":7000", "-db", "flag.db", "-max-body", "1MiB", "-base-url", "https://fhir.example.org/r4", "-conditional-delete", "multiple", "-max-entries", "50",
			"-formulary", "clinic.yaml", "-protocol", "enforce", "-export-dir", "/exports", "-export-ttl", "2h"},
			server.Config{Addr: ":7000", DBPath: "flag.db", MaxBody: 1 << 20, BaseURL: "https://fhir.example.org/r4", ConditionalDeleteMultiple: true, MaxEntries: 50,
				Formulary: "clinic.yaml", Protocol: server.PolicyEnforce, ExportDir: "/exports", ExportTTL: 2 * time.Hour}},
		{[]string{"-max-body", "2048"}, server.Config{Addr: ":9000", DBPath: "/data/env.db", MaxBody: 2048, MaxEntries: 500, Protocol: server.PolicyWarn, ExportTTL: server.DefaultExportTTL}},
	}
	for _, tt := range tests {
		got, err := server.ParseFlags(tt.args, getenv, io.Discard)
		if err != nil || got != tt.want {
			t.Errorf("ParseFlags(%v) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
	for _, bad := range [][]string{{"-max-entries", "0"}, {"-max-entries", "many"}, {"-conditional-delete", "all"}, {"-max-body", "big"}, {"-protocol", "strict"}, {"-export-ttl", "soon"}, {"-export-ttl", "-1h"}} {
		if _, err := server.ParseFlags(bad, getenv, io.Discard); err == nil {
			t.Errorf("ParseFlags(%v) accepted", bad)
		}
	}
	defaults, err := server.ParseFlags(nil, func(string) string { return "" }, io.Discard)
	if err != nil || defaults.Addr != ":8080" || defaults.DBPath != "infusion.db" || defaults.MaxBody != 16<<20 || defaults.MaxEntries != 10000 || defaults.ConditionalDeleteMultiple {
		t.Errorf("defaults = %+v, %v", defaults, err)
	}
}
