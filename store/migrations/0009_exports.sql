-- Bulk Data export jobs: their state survives a restart, so that a job
-- under way is resumed (or marked failed), never lost silently.
CREATE TABLE export_jobs (
    id               TEXT PRIMARY KEY,
    status           TEXT    NOT NULL, -- accepted, in-progress, completed or failed
    request          BLOB    NOT NULL, -- the job's parameters (JSON)
    created          TEXT    NOT NULL,
    transaction_time TEXT,             -- the instant of the snapshot exported
    finished         TEXT,
    expires          TEXT,             -- the job and its files are deleted after this
    error            TEXT,
    attempts         INTEGER NOT NULL
);

-- The files a completed job wrote, in order.
CREATE TABLE export_files (
    job      TEXT    NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    type     TEXT    NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (job, position)
) WITHOUT ROWID;
