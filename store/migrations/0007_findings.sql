-- The findings of the protocol checks: one row per server-written
-- DetectedIssue (its current version). owner is the resource whose check
-- raised it; key says which problem it is, so that a later version of the
-- owner keeps, closes or opens findings.
CREATE TABLE findings (
    id         TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    owner      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    rule       TEXT,
    status     TEXT    NOT NULL,
    severity   TEXT,
    code       TEXT,
    patient    TEXT,
    identified TEXT,
    protocol   TEXT
);
CREATE INDEX findings_owner ON findings (owner, status);
CREATE INDEX findings_patient ON findings (patient, status);
