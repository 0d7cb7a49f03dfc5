package synth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// typeOrder lists the resource types the generator makes, in the order of
// their NDJSON files.
var typeOrder = []string{"MedicationRequest", "MedicationAdministration", "Observation"}

// Types returns the resource types the generator makes.
func Types() []string { return slices.Clone(typeOrder) }

// NDJSON writes resources to a folder as newline-delimited JSON, one file
// per resource type ("Observation.ndjson"), one resource a line, as bulk
// data export does. The files are written under temporary names and get
// their names only on Close, so a run that fails or is interrupted leaves
// no partial file behind under a final name.
type NDJSON struct {
	dir   string
	files map[string]*ndjsonFile
}

type ndjsonFile struct {
	f   *os.File
	w   *bufio.Writer
	tmp string
	n   int
}

// CreateNDJSON makes the folder dir (when missing) and opens one
// temporary file per resource type in it.
func CreateNDJSON(dir string) (*NDJSON, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("synth: output folder: %w", err)
	}
	w := &NDJSON{dir: dir, files: map[string]*ndjsonFile{}}
	for _, typ := range typeOrder {
		f, err := os.CreateTemp(dir, "."+typ+".ndjson-*")
		if err != nil {
			w.Discard()
			return nil, fmt.Errorf("synth: output file for %s: %w", typ, err)
		}
		w.files[typ] = &ndjsonFile{f: f, w: bufio.NewWriterSize(f, 1<<20), tmp: f.Name()}
	}
	return w, nil
}

// Write appends resources, each to the file of its type.
func (w *NDJSON) Write(rs []Resource) error {
	for _, r := range rs {
		nf, ok := w.files[r.Type]
		if !ok {
			return fmt.Errorf("synth: no NDJSON file for %s", r.Type)
		}
		if bytes.IndexByte(r.JSON, '\n') >= 0 {
			return fmt.Errorf("synth: %s/%s is not compact JSON", r.Type, r.ID)
		}
		nf.w.Write(r.JSON)
		if err := nf.w.WriteByte('\n'); err != nil {
			return fmt.Errorf("synth: writing %s.ndjson: %w", r.Type, err)
		}
		nf.n++
	}
	return nil
}

// Files returns the paths the files get on Close, in the order of Types.
func (w *NDJSON) Files() []string {
	out := make([]string, 0, len(typeOrder))
	for _, typ := range typeOrder {
		out = append(out, filepath.Join(w.dir, typ+".ndjson"))
	}
	return out
}

// Close flushes the files and gives them their names, replacing files of
// an earlier run. On an error the temporary files are removed.
func (w *NDJSON) Close() error {
	var errs []error
	for _, typ := range typeOrder {
		nf := w.files[typ]
		if err := nf.w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("synth: writing %s.ndjson: %w", typ, err))
		}
		if err := nf.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("synth: closing %s.ndjson: %w", typ, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		w.Discard()
		return err
	}
	for _, typ := range typeOrder {
		nf := w.files[typ]
		// CreateTemp makes files readable by their owner only.
		if err := os.Chmod(nf.tmp, 0o644); err != nil {
			errs = append(errs, fmt.Errorf("synth: %s.ndjson: %w", typ, err))
			continue
		}
		if err := os.Rename(nf.tmp, filepath.Join(w.dir, typ+".ndjson")); err != nil {
			errs = append(errs, fmt.Errorf("synth: %s.ndjson: %w", typ, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		w.Discard()
		return err
	}
	return nil
}

// Discard closes and removes the temporary files: nothing is written.
func (w *NDJSON) Discard() {
	for _, nf := range w.files {
		nf.f.Close()
		os.Remove(nf.tmp)
	}
}

// TransactionBundle returns a FHIR transaction Bundle that puts each
// resource at its id ("PUT Observation/pat-000001-obs-4"), so that sending
// it again changes nothing but the versions. The resources refer to each
// other by those ids, so the entries need no fullUrl.
func TransactionBundle(rs []Resource) []byte {
	size := 64
	for _, r := range rs {
		size += len(r.JSON) + len(r.Type) + len(r.ID) + 64
	}
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"resourceType":"Bundle","type":"transaction"`)
	if len(rs) == 0 {
		// FHIR has no empty arrays.
		b.WriteString("}")
		return b.Bytes()
	}
	b.WriteString(`,"entry":[`)
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		// Types and generated ids need no JSON escaping.
		b.WriteString(`{"request":{"method":"PUT","url":"`)
		b.WriteString(r.Type + "/" + r.ID)
		b.WriteString(`"},"resource":`)
		b.Write(r.JSON)
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes()
}
