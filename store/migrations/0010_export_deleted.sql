-- An export file of deleted resources: transaction Bundles of DELETEs
-- (Bulk Data's deleted output, for an export with _since).
ALTER TABLE export_files ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
