// Package server is the HTTP face of the infusion FHIR server: Echo routing,
// middleware (request id, request log, recovery, content negotiation) and the
// FHIR REST handlers of https://hl7.org/fhir/R4/http.html. Every error
// becomes an OperationOutcome in one place, handleError.
//
// Routes (for each stored type T):
//
//	GET    /metadata                   CapabilityStatement
//	GET    /healthz                    200 when the database answers
//	GET    /_history                   system history
//	GET    /?_type=T,…                 system search (POST /_search too)
//	GET    /T?params                   search (POST /T/_search with a form body too)
//	GET    /Patient/{id}/T             search in a Patient's compartment
//	POST   /T                          create
//	GET    /T/_history                 type history
//	GET    /T/{id}                     read
//	PUT    /T/{id}                     update (creates with a client id)
//	DELETE /T/{id}                     delete
//	GET    /T/{id}/_history            instance history
//	GET    /T/{id}/_history/{vid}      vread
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"infusion/conformance"
	"infusion/fhir"
	"infusion/fhir/model"
	"infusion/fhir/search"
	"infusion/fhir/validate"
	"infusion/mapping"
	"infusion/mapping/outcomes"
	"infusion/mapping/protocol"
	"infusion/server/bulk"
	"infusion/store"
)

// storedTypes are the resource types this server stores.
var storedTypes = []string{"MedicationRequest", "MedicationAdministration", "Observation", findingType}

// readOnlyTypes are stored types that only the server writes: clients read
// and search them, and get 405 when they try to write one.
var readOnlyTypes = map[string]bool{findingType: true}

// Store is the storage the server needs; store.Store is the SQLite one.
type Store interface {
	Update(ctx context.Context, fn func(store.Writer) error) error
	Read(ctx context.Context, typ, id string) (store.Version, error)
	Search(ctx context.Context, req store.SearchRequest) (store.SearchResult, error)
	Facts(ctx context.Context) *store.Facts
	VRead(ctx context.Context, typ, id string, version int) (store.Version, error)
	History(ctx context.Context, q store.HistoryQuery) ([]store.Version, error)
	Ping(ctx context.Context) error
	IndexFingerprint(ctx context.Context) (string, error)
	Reindex(ctx context.Context, fingerprint string, extract store.Extractor) (int, error)
	Close() error
	bulk.Store // export jobs and snapshots
	// Outcomes reads, patient by patient and in parts read concurrently,
	// what the outcome figures of the selected courses need.
	Outcomes(ctx context.Context, f outcomes.Filter, window time.Duration, parts int, fn func(part int, patient string, courses []outcomes.Summary) error) error
	tableStore // the flat tables of $infusion-tables
}

var _ Store = (*store.Store)(nil)

// Software and Version name the server in its CapabilityStatement.
const (
	Software = "infusion"
	Version  = "0.1.0"
)

// Server is the FHIR server: its handlers, store and validator.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     Store
	validator *validate.Validator
	model     *model.Model
	search    *search.Registry
	mapper    *mapping.Mapper
	checker   *protocol.Checker
	mme       *outcomes.MMETable
	bulk      *bulk.Manager
	echo      *echo.Echo
	types     map[string]bool
	routes    []route
	started   time.Time
}

// route is one endpoint; the CapabilityStatement is derived from them.
type route struct {
	method, path string
	capabilities []string // restful interactions, conditional-… and operation:… it provides
	// resource is the type the route serves: eachType for a path with
	// :type, registered for each stored type; "" for the system level.
	resource string
	handler  func(*Server, echo.Context) error
}

// tabularPaths are the routes that answer in other formats than FHIR JSON
// too (CSV, NDJSON, Parquet), chosen by their handlers with tabularFormat.
var tabularPaths = map[string]bool{"/$infusion-outcomes": true, "/$infusion-tables/:table": true}

// eachType is the resource of a route registered for each stored type.
const eachType = "*"

// perType reports whether the route is registered for each stored type.
func (r route) perType() bool { return r.resource == eachType }

// Capabilities a route provides beside the restful interactions.
const (
	conditionalCreate   = "conditional-create"
	conditionalUpdate   = "conditional-update"
	conditionalDelete   = "conditional-delete"
	operationPrefix     = "operation:"
	operationValidate   = operationPrefix + "validate"
	operationFormulary  = operationPrefix + "formulary"
	operationMonitoring = operationPrefix + "monitoring"
	operationCourse     = operationPrefix + "course"
	operationSummary    = operationPrefix + "infusion-summary"
	operationExport     = operationPrefix + "export"
	operationTables     = operationPrefix + "infusion-tables"
	operationOutcomes   = operationPrefix + "infusion-outcomes"
)

func caps(c ...string) []string { return c }

// writes reports whether a route writes the resources of its type.
func (r route) writes() bool {
	for _, c := range r.capabilities {
		switch c {
		case conformance.Create, conformance.Update, conformance.Patch, conformance.Delete, conditionalUpdate, conditionalDelete:
			return true
		}
	}
	return false
}

// readOnly is the error of a write to a type only the server writes.
func readOnly(method, typ string) error {
	return fhir.Errorf(fhir.KindMethodNotAllowed, fhir.IssueNotSupported, "",
		"%s resources are written by this server's protocol checks; clients read and search them (%s not allowed)", typ, method)
}

// routeTable lists every endpoint. Paths of eachType hold :type, bound to
// one stored type at a time.
var routeTable = []route{
	{http.MethodGet, "/metadata", nil, "", (*Server).capabilities},
	{http.MethodGet, "/$formulary", caps(operationFormulary), "", (*Server).formulary},
	{http.MethodGet, "/OperationDefinition/:name", nil, "", (*Server).operationDefinition},
	{http.MethodGet, "/MedicationAdministration/:id/$monitoring", caps(operationMonitoring), "MedicationAdministration", (*Server).monitoringOp},
	{http.MethodGet, "/MedicationRequest/:id/$course", caps(operationCourse), "MedicationRequest", (*Server).courseOp},
	{http.MethodGet, "/Patient/:pid/$infusion-summary", caps(operationSummary), "Patient", (*Server).infusionSummary},
	{http.MethodGet, "/$infusion-outcomes", caps(operationOutcomes), "", (*Server).infusionOutcomes},
	{http.MethodGet, "/$export", caps(operationExport), "", (*Server).exportKickOff},
	{http.MethodGet, "/Patient/$export", caps(operationExport), "Patient", (*Server).exportKickOff},
	{http.MethodGet, "/$infusion-tables/:table", caps(operationTables), "", (*Server).infusionTables},
	{http.MethodPost, "/", caps(conformance.Transaction, conformance.Batch), "", (*Server).bundle},
	{http.MethodGet, "/_history", caps(conformance.HistorySystem), "", (*Server).history},
	{http.MethodGet, "/", caps(conformance.SearchSystem), "", (*Server).searchSystem},
	{http.MethodPost, "/_search", nil, "", (*Server).searchSystem},
	{http.MethodGet, "/Patient/:pid/:type", nil, eachType, (*Server).searchCompartment},
	{http.MethodGet, "/:type", caps(conformance.SearchType), eachType, (*Server).searchType},
	{http.MethodPost, "/:type/_search", nil, eachType, (*Server).searchType},
	{http.MethodPost, "/:type", caps(conformance.Create, conditionalCreate), eachType, (*Server).create},
	{http.MethodGet, "/:type/_history", caps(conformance.HistoryType), eachType, (*Server).history},
	{http.MethodGet, "/:type/:id", caps(conformance.Read), eachType, (*Server).read},
	{http.MethodPut, "/:type/:id", caps(conformance.Update), eachType, (*Server).update},
	{http.MethodPut, "/:type", caps(conditionalUpdate), eachType, (*Server).update},
	{http.MethodPatch, "/:type/:id", caps(conformance.Patch), eachType, (*Server).patch},
	{http.MethodDelete, "/:type/:id", caps(conformance.Delete), eachType, (*Server).delete},
	{http.MethodDelete, "/:type", caps(conditionalDelete), eachType, (*Server).delete},
	{http.MethodGet, "/:type/:id/_history", caps(conformance.HistoryInstance), eachType, (*Server).history},
	{http.MethodGet, "/:type/:id/_history/:vid", caps(conformance.VRead), eachType, (*Server).vread},
	{http.MethodPost, "/:type/$validate", caps(operationValidate), eachType, (*Server).validateOp},
	{http.MethodPost, "/:type/:id/$validate", caps(operationValidate), eachType, (*Server).validateOp},
}

// New opens the store and builds the server. Close releases it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	m, err := model.Load()
	if err != nil {
		return nil, err
	}
	v, err := validate.New(m, storedTypes...)
	if err != nil {
		return nil, err
	}
	formulary, err := protocol.Load(cfg.Formulary)
	if err != nil {
		return nil, err
	}
	mme, err := outcomes.LoadMME(cfg.MME)
	if err != nil {
		return nil, err
	}
	registry, err := search.NewRegistry(m, cfg.BaseURL, storedTypes...)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DBPath, store.Options{Logger: cfg.Logger, Outcomes: outcomes.Options{
		SessionWindow: formulary.Settings.SessionWindow.Duration(), MME: mme}})
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		store:     st,
		validator: v,
		model:     m,
		search:    registry,
		mapper:    mapping.NewMapper(mapping.DefaultClassifier()),
		checker:   protocol.NewChecker(formulary),
		mme:       mme,
		types:     map[string]bool{},
		routes:    routeTable,
		started:   time.Now(),
	}
	for _, t := range storedTypes {
		s.types[t] = true
	}
	s.echo = s.newEcho()
	if fp, err := st.IndexFingerprint(ctx); err != nil || fp != registry.Fingerprint() {
		cfg.Logger.Info("the search parameters changed: rebuilding the search index", slog.String("was", fp))
		if _, err := s.Reindex(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	s.bulk, err = bulk.New(ctx, s.store, registry, bulk.Options{Dir: cfg.ExportDir, TTL: cfg.ExportTTL, Logger: cfg.Logger, Types: storedTypes})
	if err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// Reindex rebuilds the search index of every stored resource from the
// search parameter table, and returns how many resources it indexed.
func (s *Server) Reindex(ctx context.Context) (int, error) {
	start := time.Now()
	n, err := s.store.Reindex(ctx, s.search.Fingerprint(), func(typ string, body []byte) (search.Entries, error) {
		res, err := fhir.Parse(body)
		if err != nil {
			return search.Entries{}, err
		}
		return s.search.Extract(typ, res.Tree), nil
	})
	if err == nil {
		s.log.Info("search index rebuilt", slog.Int("resources", n), slog.Duration("took", time.Since(start)))
	}
	return n, err
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RequestID())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogURI: true, LogMethod: true, LogLatency: true, LogRequestID: true,
		LogError: true, HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			s.log.LogAttrs(c.Request().Context(), level, "request",
				slog.String("method", v.Method), slog.String("uri", v.URI), slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency), slog.String("request_id", v.RequestID))
			return nil
		},
	}))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.LogAttrs(c.Request().Context(), slog.LevelError, "panic",
				slog.String("error", err.Error()), slog.String("stack", string(stack)))
			return err
		},
	}))
	e.GET("/healthz", s.healthz)
	e.GET(exportStatusPath+":id", s.exportStatus)
	e.DELETE(exportStatusPath+":id", s.exportCancel)
	e.GET(exportFilePath+":id/:name", s.exportFile)
	for _, r := range s.routes {
		h := r.handler
		writes := r.writes()
		handler := func(c echo.Context) error {
			t := c.Param("type")
			if t != "" && !s.types[t] {
				return s.unsupportedType(c, t)
			}
			if writes && readOnlyTypes[t] {
				return readOnly(c.Request().Method, t)
			}
			return h(s, c)
		}
		mw := negotiate
		if tabularPaths[r.path] {
			mw = negotiateTabular
		}
		e.Add(r.method, r.path, handler, mw)
	}
	return e
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Close stops the export jobs (they start again with the next server on
// the same database) and closes the store.
func (s *Server) Close() error {
	s.bulk.Close()
	return s.store.Close()
}

// Serve listens on cfg.Addr and serves until ctx ends, then shuts down
// gracefully: requests in flight finish (up to ShutdownTimeout) and the
// database is closed.
func Serve(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	s, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		s.Close()
		return fmt.Errorf("serve: %w", err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	cfg.Logger.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("db", cfg.DBPath))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		cfg.Logger.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		err = srv.Shutdown(shutdownCtx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, s.Close())
}

func (s *Server) healthz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return &fhir.Error{Kind: fhir.KindUnavailable, Err: err,
			Issues: []fhir.Issue{{Severity: fhir.SeverityFatal, Code: fhir.IssueTransient, Diagnostics: "the database does not answer"}}}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func capabilityParam(p *search.Param) conformance.SearchParam {
	return conformance.SearchParam{Name: p.Name, Definition: p.URL, Type: string(p.Type), Documentation: p.Expression}
}

// capabilities answers GET /metadata from the route table.
func (s *Server) capabilities(c echo.Context) error {
	d := conformance.Description{
		Software:    Software,
		Version:     Version,
		BaseURL:     s.baseURL(c),
		Date:        s.started,
		Description: "FHIR R4 server for infusion therapy in chronic pain",
	}
	for _, t := range storedTypes {
		res := conformance.Resource{Type: t, SearchInclude: []string{t + ":*"}, SearchRevInclude: []string{}}
		for _, r := range s.routes {
			if r.resource != eachType && r.resource != t || readOnlyTypes[t] && r.writes() {
				continue
			}
			for _, c := range r.capabilities {
				switch c {
				case conditionalCreate:
					res.ConditionalCreate = true
				case conditionalUpdate:
					res.ConditionalUpdate = true
				case conditionalDelete:
					res.ConditionalDelete = "single"
					if s.cfg.ConditionalDeleteMultiple {
						res.ConditionalDelete = "multiple"
					}
				default:
					if name, ok := strings.CutPrefix(c, operationPrefix); !ok {
						res.Interactions = append(res.Interactions, c)
					} else if !slices.Contains(res.Operations, name) {
						res.Operations = append(res.Operations, name)
					}
				}
			}
		}
		for _, p := range s.search.Params(t) {
			res.SearchParams = append(res.SearchParams, capabilityParam(p))
			if p.Type == search.TypeReference {
				res.SearchInclude = append(res.SearchInclude, t+":"+p.Name)
			}
		}
		for _, other := range storedTypes {
			for _, p := range s.search.ReferenceParams(other) {
				if slices.Contains(p.Targets, t) || slices.Contains(p.Targets, "Resource") {
					res.SearchRevInclude = append(res.SearchRevInclude, other+":"+p.Name)
				}
			}
		}
		d.Resources = append(d.Resources, res)
	}
	for _, p := range s.search.Params(storedTypes[0]) {
		if p.Base == "Resource" {
			d.SystemSearchParams = append(d.SystemSearchParams, capabilityParam(p))
		}
	}
	d.Compartments = []string{"http://hl7.org/fhir/CompartmentDefinition/patient"}
	operationsOf := map[string]int{} // index in d.Resources of the types with operations only
	for _, r := range s.routes {
		if r.perType() || s.types[r.resource] {
			continue
		}
		for _, c := range r.capabilities {
			name, isOp := strings.CutPrefix(c, operationPrefix)
			switch {
			case !isOp:
				d.System = append(d.System, c)
			case r.resource == "":
				d.Operations = append(d.Operations, name)
			default:
				i, ok := operationsOf[r.resource]
				if !ok {
					i = len(d.Resources)
					operationsOf[r.resource] = i
					d.Resources = append(d.Resources, conformance.Resource{Type: r.resource})
				}
				d.Resources[i].Operations = append(d.Resources[i].Operations, name)
			}
		}
	}
	f := s.checker.Formulary()
	d.Documentation = fmt.Sprintf("Protocol checks: policy %s; formulary %q version %s (sha256:%s). "+
		"Findings are DetectedIssue resources, read and search only. Decision support, not medical advice.",
		s.cfg.Protocol, f.Title, f.Version, f.Checksum)
	return s.writeJSON(c, http.StatusOK, conformance.Capability(d))
}
