package server

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Config configures the server. Zero fields take the defaults below.
type Config struct {
	// Addr is the listen address; default ":8080".
	Addr string
	// DBPath is the SQLite file; default "infusion.db".
	DBPath string
	// MaxBody is the largest request body accepted, in bytes; default 16 MiB.
	MaxBody int64
	// BaseURL is the absolute base used in Location headers and Bundle
	// fullUrls, e.g. "https://fhir.example.org/r4"; default: derived from
	// each request's Host.
	BaseURL string
	// ShutdownTimeout bounds how long shutdown waits for requests in
	// flight; default 30 s.
	ShutdownTimeout time.Duration
	// Logger receives the request log and errors; default: discard.
	Logger *slog.Logger
	// ConditionalDeleteMultiple lets a conditional delete remove every
	// resource its search matches; by default one at most (412 on more).
	ConditionalDeleteMultiple bool
	// MaxEntries is the most entries a batch or transaction Bundle may
	// hold; default 10,000.
	MaxEntries int
	// Formulary is the protocol formulary file (YAML); default: the one
	// embedded in the binary.
	Formulary string
	// Protocol is what the protocol checks do with a write; default warn.
	Protocol Policy
	// MME is the table of MME conversion factors (YAML) of the opioid
	// figures; default: the CDC 2022 one embedded in the binary.
	MME string
	// ExportDir holds the files of Bulk Data exports; default: DBPath
	// with ".exports" appended.
	ExportDir string
	// ExportTTL is how long a finished export and its files are kept;
	// default 24 h.
	ExportTTL time.Duration
}

// The defaults of Config.
const (
	DefaultAddr       = ":8080"
	DefaultDBPath     = "infusion.db"
	DefaultMaxBody    = 16 << 20
	DefaultMaxEntries = 10000
	DefaultExportTTL  = 24 * time.Hour
)

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.DBPath == "" {
		c.DBPath = DefaultDBPath
	}
	if c.ExportDir == "" {
		c.ExportDir = c.DBPath + ".exports"
	}
	if c.ExportTTL <= 0 {
		c.ExportTTL = DefaultExportTTL
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Protocol == "" {
		c.Protocol = PolicyWarn
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return c
}

// ParseFlags reads the serve command's flags; environment variables
// (INFUSION_ADDR, INFUSION_DB, INFUSION_MAX_BODY, INFUSION_BASE_URL,
// INFUSION_CONDITIONAL_DELETE, INFUSION_MAX_ENTRIES, INFUSION_FORMULARY,
// INFUSION_PROTOCOL, INFUSION_MME, INFUSION_EXPORT_DIR, INFUSION_EXPORT_TTL) give the
// defaults that flags override.
func ParseFlags(args []string, getenv func(string) string, output io.Writer) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(output)
	or := func(env, def string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return def
	}
	addr := fs.String("addr", or("INFUSION_ADDR", DefaultAddr), "listen address (env INFUSION_ADDR)")
	db := fs.String("db", or("INFUSION_DB", DefaultDBPath), "SQLite database file (env INFUSION_DB)")
	maxBody := fs.String("max-body", or("INFUSION_MAX_BODY", "16MiB"), "largest request body, e.g. 16MiB or 1048576 (env INFUSION_MAX_BODY)")
	baseURL := fs.String("base-url", or("INFUSION_BASE_URL", ""), "absolute base URL for Location and fullUrl (env INFUSION_BASE_URL; default: from each request)")
	condDelete := fs.String("conditional-delete", or("INFUSION_CONDITIONAL_DELETE", "single"), "single or multiple: how many resources a conditional delete may remove (env INFUSION_CONDITIONAL_DELETE)")
	maxEntries := fs.String("max-entries", or("INFUSION_MAX_ENTRIES", strconv.Itoa(DefaultMaxEntries)), "most entries in a batch or transaction Bundle (env INFUSION_MAX_ENTRIES)")
	formulary := fs.String("formulary", or("INFUSION_FORMULARY", ""), "protocol formulary YAML file (env INFUSION_FORMULARY; default: the embedded one)")
	policy := fs.String("protocol", or("INFUSION_PROTOCOL", string(PolicyWarn)), "off, warn or enforce: what the protocol checks do with a write (env INFUSION_PROTOCOL)")
	mme := fs.String("mme", or("INFUSION_MME", ""), "MME conversion factors YAML file (env INFUSION_MME; default: the embedded CDC 2022 table)")
	exportDir := fs.String("export-dir", or("INFUSION_EXPORT_DIR", ""), "directory of Bulk Data export files (env INFUSION_EXPORT_DIR; default: the -db file with .exports appended)")
	exportTTL := fs.String("export-ttl", or("INFUSION_EXPORT_TTL", DefaultExportTTL.String()), "how long a finished export and its files are kept, e.g. 24h (env INFUSION_EXPORT_TTL)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	size, err := humanize.ParseBytes(*maxBody)
	if err != nil || size == 0 {
		return Config{}, fmt.Errorf("serve: -max-body %q is not a size such as 16MiB", *maxBody)
	}
	if *baseURL != "" {
		u, err := url.Parse(*baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Config{}, fmt.Errorf("serve: -base-url %q is not an absolute http(s) URL", *baseURL)
		}
	}
	entries, err := strconv.Atoi(*maxEntries)
	if err != nil || entries < 1 {
		return Config{}, fmt.Errorf("serve: -max-entries %q is not a positive whole number", *maxEntries)
	}
	if *condDelete != "single" && *condDelete != "multiple" {
		return Config{}, fmt.Errorf("serve: -conditional-delete %q is not single or multiple", *condDelete)
	}
	switch Policy(*policy) {
	case PolicyOff, PolicyWarn, PolicyEnforce:
	default:
		return Config{}, fmt.Errorf("serve: -protocol %q is not off, warn or enforce", *policy)
	}
	ttl, err := time.ParseDuration(*exportTTL)
	if err != nil || ttl <= 0 {
		return Config{}, fmt.Errorf("serve: -export-ttl %q is not a positive duration such as 24h", *exportTTL)
	}
	return Config{Addr: *addr, DBPath: *db, MaxBody: int64(size), BaseURL: *baseURL,
		ConditionalDeleteMultiple: *condDelete == "multiple", MaxEntries: entries,
		Formulary: *formulary, Protocol: Policy(*policy), MME: *mme, ExportDir: *exportDir, ExportTTL: ttl}, nil
}
