-- The search index tables are clustered on their value: each table is its
-- own value index (WITHOUT ROWID), so a row costs one b-tree fewer to write
-- and a value lookup reads the table directly. A row repeated in a resource
-- adds nothing, so rows are unique.
CREATE TABLE search_token_new (
    rid         INTEGER NOT NULL,
    param       TEXT    NOT NULL,
    grp         INTEGER NOT NULL,
    system      TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    type_system TEXT    NOT NULL,
    type_code   TEXT    NOT NULL,
    PRIMARY KEY (param, code, system, rid, grp, text, type_system, type_code)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_token_new SELECT rid, param, grp, system, code, text, type_system, type_code FROM search_token;
DROP TABLE search_token;
ALTER TABLE search_token_new RENAME TO search_token;
CREATE INDEX search_token_rid ON search_token (rid, param);
CREATE INDEX search_token_text ON search_token (param, text) WHERE text <> '';

CREATE TABLE search_string_new (
    rid   INTEGER NOT NULL,
    param TEXT    NOT NULL,
    grp   INTEGER NOT NULL,
    norm  TEXT    NOT NULL,
    exact TEXT    NOT NULL,
    PRIMARY KEY (param, norm, rid, grp, exact)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_string_new SELECT rid, param, grp, norm, exact FROM search_string;
DROP TABLE search_string;
ALTER TABLE search_string_new RENAME TO search_string;
CREATE INDEX search_string_rid ON search_string (rid, param);
CREATE INDEX search_string_exact ON search_string (param, exact);

CREATE TABLE search_reference_new (
    rid          INTEGER NOT NULL,
    param        TEXT    NOT NULL,
    grp          INTEGER NOT NULL,
    target_type  TEXT    NOT NULL,
    target_id    TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    ident_system TEXT    NOT NULL,
    ident_value  TEXT    NOT NULL,
    PRIMARY KEY (param, target_id, target_type, rid, grp, url, ident_system, ident_value)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_reference_new SELECT rid, param, grp, target_type, target_id, url, ident_system, ident_value FROM search_reference;
DROP TABLE search_reference;
ALTER TABLE search_reference_new RENAME TO search_reference;
CREATE INDEX search_reference_rid ON search_reference (rid, param);
CREATE INDEX search_reference_url ON search_reference (param, url) WHERE url <> '';
CREATE INDEX search_reference_ident ON search_reference (param, ident_value) WHERE ident_value <> '';

CREATE TABLE search_date_new (
    rid   INTEGER NOT NULL,
    param TEXT    NOT NULL,
    grp   INTEGER NOT NULL,
    low   INTEGER NOT NULL,
    high  INTEGER NOT NULL,
    PRIMARY KEY (param, low, high, rid, grp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_date_new SELECT rid, param, grp, low, high FROM search_date;
DROP TABLE search_date;
ALTER TABLE search_date_new RENAME TO search_date;
CREATE INDEX search_date_rid ON search_date (rid, param);
CREATE INDEX search_date_high ON search_date (param, high);

CREATE TABLE search_quantity_new (
    rid    INTEGER NOT NULL,
    param  TEXT    NOT NULL,
    grp    INTEGER NOT NULL,
    value  REAL    NOT NULL,
    system TEXT    NOT NULL,
    code   TEXT    NOT NULL,
    unit   TEXT    NOT NULL,
    PRIMARY KEY (param, code, value, rid, grp, system, unit)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_quantity_new SELECT rid, param, grp, value, system, code, unit FROM search_quantity;
DROP TABLE search_quantity;
ALTER TABLE search_quantity_new RENAME TO search_quantity;
CREATE INDEX search_quantity_rid ON search_quantity (rid, param);
CREATE INDEX search_quantity_value ON search_quantity (param, value);

CREATE TABLE search_uri_new (
    rid   INTEGER NOT NULL,
    param TEXT    NOT NULL,
    grp   INTEGER NOT NULL,
    value TEXT    NOT NULL,
    PRIMARY KEY (param, value, rid, grp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_uri_new SELECT rid, param, grp, value FROM search_uri;
DROP TABLE search_uri;
ALTER TABLE search_uri_new RENAME TO search_uri;
CREATE INDEX search_uri_rid ON search_uri (rid, param);
