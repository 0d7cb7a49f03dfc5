// Package bulk runs FHIR Bulk Data export jobs
// (https://hl7.org/fhir/uv/bulkdata/export.html): each job reads one
// consistent snapshot of the store and streams the resources it selects
// into NDJSON files, one per type, in the background. Job state lives in
// the store, so a job under way when the server stops is started again on
// the next start (or marked failed after too many tries); finished jobs and
// their files expire.
package bulk

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"infusion/fhir/search"
	"infusion/store"
)

// Store is what the jobs need of the storage.
type Store interface {
	Snapshot(ctx context.Context) (*store.Snapshot, error)
	CreateExportJob(ctx context.Context, j store.ExportJob) error
	SaveExportJob(ctx context.Context, j store.ExportJob) error
	ExportJob(ctx context.Context, id string) (store.ExportJob, error)
	ExportJobs(ctx context.Context) ([]store.ExportJob, error)
	DeleteExportJob(ctx context.Context, id string) error
}

// Options configure a Manager. Zero fields take the defaults.
type Options struct {
	// Dir holds a directory of files per job.
	Dir string
	// TTL is how long a finished job and its files are kept; default 24 h.
	TTL time.Duration
	// Workers is how many jobs run at once; default 2.
	Workers int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives job events; default: discard.
	Logger *slog.Logger
	// Types are the resource types the store holds, in the order exported.
	Types []string
}

// maxAttempts is how many times a job is started before a restart marks
// it failed rather than starting it again.
const maxAttempts = 3

// queueSize bounds the jobs waiting for a worker.
const queueSize = 64

// ErrBusy is returned by Start when too many jobs are waiting.
var ErrBusy = errors.New("bulk: too many export jobs are waiting")

// Manager accepts, runs, reports, cancels and expires export jobs.
type Manager struct {
	store    Store
	registry *search.Registry
	opts     Options
	queue    chan string
	ctx      context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	running map[string]*run
}

// run is a job being written: its progress and how to cancel it.
type run struct {
	cancel  context.CancelFunc
	done    chan struct{}
	written atomic.Int64
	total   atomic.Int64 // an upper bound, once known
}

// New starts a Manager: jobs left unfinished by a previous run are started
// again (or marked failed), expired ones are removed, and the workers wait
// for jobs. Close stops it.
func New(ctx context.Context, st Store, registry *search.Registry, opts Options) (*Manager, error) {
	if opts.TTL <= 0 {
		opts.TTL = 24 * time.Hour
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bulk: creating %s: %w", opts.Dir, err)
	}
	m := &Manager{store: st, registry: registry, opts: opts, queue: make(chan string, queueSize+opts.Workers), running: map[string]*run{}}
	m.ctx, m.stop = context.WithCancel(context.Background())
	if err := m.recover(ctx); err != nil {
		return nil, err
	}
	for range opts.Workers {
		m.wg.Add(1)
		go m.work()
	}
	m.wg.Add(1)
	go m.expireEvery(max(min(opts.TTL/4, time.Minute), time.Second))
	return m, nil
}

// Close cancels the jobs under way, which stay in-progress in the store to
// be started again by the next Manager, and waits for the workers.
func (m *Manager) Close() {
	m.stop()
	m.wg.Wait()
}

// recover queues again the jobs a stop interrupted and removes the files of
// jobs that are gone or expired.
func (m *Manager) recover(ctx context.Context) error {
	jobs, err := m.store.ExportJobs(ctx)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, j := range jobs {
		known[j.ID] = true
		switch j.Status {
		case store.ExportAccepted, store.ExportInProgress:
			if err := os.RemoveAll(m.jobDir(j.ID)); err != nil {
				return fmt.Errorf("bulk: clearing job %s: %w", j.ID, err)
			}
			j.Status, j.TransactionTime, j.Files = store.ExportAccepted, time.Time{}, nil
			switch {
			case j.Attempts >= maxAttempts:
				m.finish(&j, fmt.Errorf("the export was interrupted by %d server restarts; start a new export", j.Attempts))
			case len(m.queue) == cap(m.queue):
				m.finish(&j, fmt.Errorf("the server restarted with more than %d unfinished exports; start a new export", cap(m.queue)))
			}
			if err := m.store.SaveExportJob(ctx, j); err != nil {
				return err
			}
			if j.Status == store.ExportAccepted {
				m.queue <- j.ID
				m.opts.Logger.Info("export job resumed", slog.String("job", j.ID), slog.Int("attempt", j.Attempts+1))
			}
		}
	}
	entries, err := os.ReadDir(m.opts.Dir)
	if err != nil {
		return fmt.Errorf("bulk: reading %s: %w", m.opts.Dir, err)
	}
	for _, e := range entries {
		if e.IsDir() && !known[e.Name()] {
			os.RemoveAll(filepath.Join(m.opts.Dir, e.Name()))
		}
	}
	return m.expire(ctx)
}

// Start records a job and queues it; it returns the job's id.
func (m *Manager) Start(ctx context.Context, req Request) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	j := store.ExportJob{ID: uuid.NewString(), Status: store.ExportAccepted, Request: body, Created: m.opts.Now()}
	if len(m.queue) >= queueSize {
		return "", ErrBusy
	}
	if err := m.store.CreateExportJob(ctx, j); err != nil {
		return "", err
	}
	select {
	case m.queue <- j.ID:
		return j.ID, nil
	default:
		return "", errors.Join(ErrBusy, m.store.DeleteExportJob(ctx, j.ID))
	}
}

// Status is a job's state, with its progress while it runs.
type Status struct {
	store.ExportJob
	Request Request
	// Written is how many resources are written so far, and Total an
	// upper bound of how many will be (0 until known).
	Written, Total int64
}

// Status reads a job. Error: store.ENotFound for a job that is unknown,
// cancelled or expired.
func (m *Manager) Status(ctx context.Context, id string) (Status, error) {
	j, err := m.store.ExportJob(ctx, id)
	if err != nil {
		return Status{}, err
	}
	if m.expired(j) {
		if err := m.remove(ctx, id); err != nil {
			return Status{}, err
		}
		return Status{}, &store.Error{Code: store.ENotFound, Message: fmt.Sprintf("export job %s has expired", id)}
	}
	st := Status{ExportJob: j}
	if err := json.Unmarshal(j.Request, &st.Request); err != nil {
		return Status{}, fmt.Errorf("bulk: job %s has an unreadable request: %w", id, err)
	}
	m.mu.Lock()
	if r := m.running[id]; r != nil {
		st.Written, st.Total = r.written.Load(), r.total.Load()
	}
	m.mu.Unlock()
	return st, nil
}

// Cancel stops a job if it runs and deletes it and its files. Error:
// store.ENotFound for an unknown job.
func (m *Manager) Cancel(ctx context.Context, id string) error {
	if _, err := m.store.ExportJob(ctx, id); err != nil {
		return err
	}
	return m.remove(ctx, id)
}

// remove deletes a job's state, so that a worker taking it later skips it
// and a run under way cannot save it again, stops the run, and deletes the
// job's files. It finishes even if the caller goes away.
func (m *Manager) remove(ctx context.Context, id string) error {
	ctx = context.WithoutCancel(ctx)
	if err := m.store.DeleteExportJob(ctx, id); err != nil {
		return err
	}
	m.mu.Lock()
	r := m.running[id]
	m.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
	if err := os.RemoveAll(m.jobDir(id)); err != nil {
		return fmt.Errorf("bulk: deleting the files of job %s: %w", id, err)
	}
	return nil
}

// File returns the path of a completed job's output file. Error:
// store.ENotFound when there is no such job or file.
func (m *Manager) File(ctx context.Context, id, name string) (string, error) {
	st, err := m.Status(ctx, id)
	if err != nil {
		return "", err
	}
	for _, f := range st.Files {
		if f.Name == name && st.Status == store.ExportCompleted {
			return filepath.Join(m.jobDir(id), name), nil
		}
	}
	return "", &store.Error{Code: store.ENotFound, Message: fmt.Sprintf("export job %s has no file %s", id, name)}
}

func (m *Manager) jobDir(id string) string { return filepath.Join(m.opts.Dir, id) }

func (m *Manager) expired(j store.ExportJob) bool {
	return !j.Expires.IsZero() && !m.opts.Now().Before(j.Expires)
}

// expire removes the jobs whose time is up.
func (m *Manager) expire(ctx context.Context) error {
	jobs, err := m.store.ExportJobs(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if m.expired(j) {
			if err := m.remove(ctx, j.ID); err != nil {
				return err
			}
			m.opts.Logger.Info("export job expired", slog.String("job", j.ID))
		}
	}
	return nil
}

func (m *Manager) expireEvery(every time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			if err := m.expire(m.ctx); err != nil && m.ctx.Err() == nil {
				m.opts.Logger.Error("expiring export jobs", slog.String("error", err.Error()))
			}
		}
	}
}

// work runs queued jobs until the Manager closes.
func (m *Manager) work() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case id := <-m.queue:
			m.runJob(id)
		}
	}
}

// runJob runs one job and records how it ended. A job cancelled by Close
// is left as it is in the store, to be started again.
func (m *Manager) runJob(id string) {
	ctx, cancel := context.WithCancel(m.ctx)
	r := &run{cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	m.running[id] = r
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.running, id)
		m.mu.Unlock()
		cancel()
		close(r.done)
	}()
	j, err := m.store.ExportJob(ctx, id)
	if err != nil {
		if store.Code(err) != store.ENotFound && ctx.Err() == nil {
			m.opts.Logger.Error("export job", slog.String("job", id), slog.String("error", err.Error()))
		}
		return // cancelled before it started, or unreadable: the next start runs it again
	}
	j.Attempts++
	j.Status = store.ExportInProgress
	started := time.Now()
	if err = m.store.SaveExportJob(ctx, j); err == nil {
		err = m.export(ctx, &j, r)
	}
	if ctx.Err() != nil || store.Code(err) == store.ENotFound {
		return // cancelled, or the server stops (the next start runs it again)
	}
	m.finish(&j, err)
	if err := m.store.SaveExportJob(context.WithoutCancel(ctx), j); err != nil {
		if store.Code(err) != store.ENotFound {
			m.opts.Logger.Error("export job", slog.String("job", id), slog.String("error", err.Error()))
		}
		return
	}
	m.opts.Logger.Info("export job finished", slog.String("job", id), slog.String("status", j.Status),
		slog.Int64("resources", r.written.Load()), slog.Duration("took", time.Since(started)))
}

// finish marks a job completed, or failed with err, and sets its expiry.
func (m *Manager) finish(j *store.ExportJob, err error) {
	j.Status, j.Finished = store.ExportCompleted, m.opts.Now()
	j.Expires = j.Finished.Add(m.opts.TTL)
	if err != nil {
		j.Status, j.Error, j.Files = store.ExportFailed, err.Error(), nil
	}
}

// export writes the files of a job from one snapshot.
func (m *Manager) export(ctx context.Context, j *store.ExportJob, r *run) error {
	var req Request
	if err := json.Unmarshal(j.Request, &req); err != nil {
		return fmt.Errorf("the job's request cannot be read: %w", err)
	}
	queries, err := m.queries(req)
	if err != nil {
		return err
	}
	before := m.opts.Now()
	snap, err := m.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	defer snap.Close()
	j.TransactionTime = snap.LastUpdated
	if j.TransactionTime.IsZero() {
		j.TransactionTime = before // an empty database
	}
	var total int64
	for _, q := range queries {
		n, err := snap.Count(ctx, q.Type)
		if err != nil {
			return err
		}
		total += n
	}
	r.total.Store(total)
	dir := m.jobDir(j.ID)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, q := range queries {
		f := store.ExportFile{Name: q.Type + ".ndjson", Type: q.Type}
		err := writeFile(filepath.Join(dir, f.Name), &f.Count, func(line func([]byte) error) error {
			return snap.Export(ctx, q, func(body []byte) error {
				r.written.Add(1)
				return line(body)
			})
		})
		if err != nil {
			return err
		}
		if f.Count > 0 {
			j.Files = append(j.Files, f)
		}
	}
	if req.Since.IsZero() || req.Patients {
		return nil
	}
	// The resources deleted since: one transaction Bundle a line. Their
	// index rows are gone, so a type with a _typeFilter has none.
	for _, q := range queries {
		if len(q.Filters) > 0 {
			continue
		}
		f := store.ExportFile{Name: q.Type + ".deleted.ndjson", Type: q.Type, Deleted: true}
		var bundle []byte
		err := writeFile(filepath.Join(dir, f.Name), &f.Count, func(line func([]byte) error) error {
			return snap.ExportDeleted(ctx, q, func(id []byte) error {
				bundle = append(bundle[:0], `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"`...)
				bundle = append(append(append(bundle, q.Type...), '/'), id...)
				return line(append(bundle, `"}}]}`...))
			})
		})
		if err != nil {
			return err
		}
		if f.Count > 0 {
			j.Files = append(j.Files, f)
		}
	}
	return nil
}

// writeFile writes an NDJSON file: fill calls line with each line's JSON,
// which count counts. A file with no line is removed.
func writeFile(path string, count *int64, fill func(line func([]byte) error) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = fill(func(b []byte) error {
		w.Write(b)
		*count++
		return w.WriteByte('\n')
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err == nil && *count == 0 {
		err = os.Remove(path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return nil
}
