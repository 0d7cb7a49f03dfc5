// Command infusion is a FHIR R4 server for infusion therapy in chronic pain.
//
//	infusion [serve] [-addr :8080] [-db infusion.db] [-max-body 16MiB] [-base-url URL]
//	infusion reindex [-db infusion.db]
//	infusion synth -patients N (-out DIR | -url BASE) [-seed 1] [rate flags]
//	infusion conformance -base URL [-suite rest,search,bundles,errors,infusion] [-header 'Name: value'] [-keep]
//	                     [-testscript FILE|DIR] [-testreport DIR] [-json FILE] [-junit FILE] [-html FILE]
//
// serve is the default command, so "go run ." starts the server. synth
// generates deterministic infusion courses (mapping/synth) and writes them
// as NDJSON files or sends them to a FHIR server in transaction Bundles.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"infusion/server"
)

const usage = `usage: infusion [command] [flags]

commands:
  serve    serve the FHIR API (the default)
  reindex  rebuild the search index of the database (-db), e.g. after the
           search parameters changed (serve also does it when it sees that)
  synth    generate synthetic infusion courses: NDJSON files (-out DIR), or
           transaction Bundles sent to a FHIR server (-url BASE)
  conformance
           run the conformance kit against a FHIR server (-base URL);
           exit 0 when every SHALL check passes, 1 when one fails, 2 when
           the server cannot be reached

Run "infusion serve -h", "infusion synth -h" or "infusion conformance -h"
for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run dispatches to a subcommand and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, code, ok := config(args, getenv, stderr)
		if !ok {
			return code
		}
		if getenv("GOGC") == "" {
			// Validation allocates a tree per request and little survives
			// it: collecting less often buys throughput for little memory.
			debug.SetGCPercent(200)
		}
		if err := server.Serve(ctx, cfg); err != nil {
			cfg.Logger.Error("server stopped", slog.String("error", err.Error()))
			return 1
		}
		return 0
	case "reindex":
		cfg, code, ok := config(args, getenv, stderr)
		if !ok {
			return code
		}
		s, err := server.New(ctx, cfg)
		if err == nil {
			_, err = s.Reindex(ctx)
			err = errors.Join(err, s.Close())
		}
		if err != nil {
			cfg.Logger.Error("reindex failed", slog.String("error", err.Error()))
			return 1
		}
		return 0
	case "synth":
		return synthCommand(ctx, args, stderr)
	case "conformance":
		return conformanceCommand(ctx, args, os.Stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stderr, usage)
		return 0
	}
	fmt.Fprintf(stderr, "infusion: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// config reads a command's flags into a server configuration with a JSON
// logger on stderr; when it returns false, the command ends with code.
func config(args []string, getenv func(string) string, stderr io.Writer) (cfg server.Config, code int, ok bool) {
	cfg, err := server.ParseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return cfg, 0, false
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cfg, 2, false
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, nil))
	return cfg, 0, true
}
