package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"infusion/fhir/search"
)

// Extractor returns the search index rows of a stored resource.
type Extractor func(typ string, body []byte) (search.Entries, error)

const fingerprintKey = "search_fingerprint"

// IndexFingerprint returns the fingerprint of the search parameter table the
// index rows were built with, "" when none was recorded.
func (s *Store) IndexFingerprint(ctx context.Context) (string, error) {
	var v string
	err := s.read.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", fingerprintKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// Reindex rebuilds the search index rows of every current resource with
// extract, in batches, and records the fingerprint of the parameter table
// they now follow. Writes go on meanwhile; each batch is one transaction.
func (s *Store) Reindex(ctx context.Context, fingerprint string, extract Extractor) (int, error) {
	const batch = 500
	var after int64
	n := 0
	for {
		done := false
		// Read and rewrite inside one write transaction, so that no write
		// can come between what is read and what is indexed.
		err := s.Update(ctx, func(w Writer) error {
			tx := w.(*Tx)
			rows, err := tx.tx.QueryContext(ctx, `SELECT r.rid, r.type, v.body FROM resources r
				JOIN resource_versions v ON v.seq = r.seq WHERE r.rid > ? AND r.deleted = 0 ORDER BY r.rid LIMIT ?`, after, batch)
			if err != nil {
				return err
			}
			type item struct {
				rid  int64
				typ  string
				body []byte
			}
			var items []item
			for rows.Next() {
				var it item
				if err := rows.Scan(&it.rid, &it.typ, &it.body); err != nil {
					rows.Close()
					return err
				}
				items = append(items, it)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, it := range items {
				e, err := extract(it.typ, it.body)
				if err != nil {
					return fmt.Errorf("%s rid %d: %w", it.typ, it.rid, err)
				}
				if err := tx.replaceIndex(it.rid, e, false); err != nil {
					return err
				}
			}
			if len(items) < batch {
				done = true
			}
			if len(items) > 0 {
				after = items[len(items)-1].rid
			}
			n += len(items)
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("store: reindexing: %w", err)
		}
		if done {
			break
		}
	}
	err := s.Update(ctx, func(w Writer) error {
		_, err := w.(*Tx).tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fingerprintKey, fingerprint)
		return err
	})
	return n, err
}
