-- Each resource gets an integer key, rid, that the search index rows use.
CREATE TABLE resources_new (
    rid          INTEGER PRIMARY KEY,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    deleted      INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,
    UNIQUE (type, id)
);
INSERT INTO resources_new (type, id, version, seq, deleted, last_updated)
    SELECT type, id, version, seq, deleted, last_updated FROM resources ORDER BY seq;
DROP TABLE resources;
ALTER TABLE resources_new RENAME TO resources;
CREATE INDEX resources_type_rid ON resources (type, deleted, rid);
CREATE INDEX resources_type_updated ON resources (type, last_updated);

-- Search index rows of the current version of each resource: one table per
-- parameter type. param is "Type.name" ("_tag" for common parameters); grp
-- ties the parts of a composite (0, or i+1 for Observation.component[i]).
CREATE TABLE search_token (
    rid         INTEGER NOT NULL,
    param       TEXT    NOT NULL,
    grp         INTEGER NOT NULL,
    system      TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    text        TEXT    NOT NULL, -- display or text, normalized
    type_system TEXT    NOT NULL, -- an identifier's type
    type_code   TEXT    NOT NULL
);
CREATE INDEX search_token_code ON search_token (param, code, system);
CREATE INDEX search_token_system ON search_token (param, system);
CREATE INDEX search_token_text ON search_token (param, text);
CREATE INDEX search_token_rid ON search_token (rid, param);

CREATE TABLE search_string (
    rid   INTEGER NOT NULL,
    param TEXT    NOT NULL,
    grp   INTEGER NOT NULL,
    norm  TEXT    NOT NULL,
    exact TEXT    NOT NULL
);
CREATE INDEX search_string_norm ON search_string (param, norm);
CREATE INDEX search_string_rid ON search_string (rid, param);

CREATE TABLE search_reference (
    rid          INTEGER NOT NULL,
    param        TEXT    NOT NULL,
    grp          INTEGER NOT NULL,
    target_type  TEXT    NOT NULL,
    target_id    TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    ident_system TEXT    NOT NULL,
    ident_value  TEXT    NOT NULL
);
CREATE INDEX search_reference_target ON search_reference (param, target_id, target_type);
CREATE INDEX search_reference_url ON search_reference (param, url);
CREATE INDEX search_reference_ident ON search_reference (param, ident_value);
CREATE INDEX search_reference_to ON search_reference (target_type, target_id);
CREATE INDEX search_reference_rid ON search_reference (rid, param);

CREATE TABLE search_date (
    rid   INTEGER NOT NULL,
    param TEXT    NOT NULL,
    grp   INTEGER NOT NULL,
    low   INTEGER NOT NULL, -- Unix milliseconds, both ends included
    high  INTEGER NOT NULL
);
CREATE INDEX search_date_low ON search_date (param, low);
CREATE INDEX search_date_high ON search_date (param, high);
CREATE INDEX search_date_rid ON search_date (rid, param);

CREATE TABLE search_quantity (
    rid    INTEGER NOT NULL,
    param  TEXT    NOT NULL,
    grp    INTEGER NOT NULL,
    value  REAL    NOT NULL,
    system TEXT    NOT NULL,
    code   TEXT    NOT NULL,
    unit   TEXT    NOT NULL
);
CREATE INDEX search_quantity_code ON search_quantity (param, code, value);
CREATE INDEX search_quantity_value ON search_quantity (param, value);
CREATE INDEX search_quantity_rid ON search_quantity (rid, param);

CREATE TABLE search_uri (
    rid   INTEGER NOT NULL,
    param TEXT    NOT NULL,
    grp   INTEGER NOT NULL,
    value TEXT    NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (param, value);
CREATE INDEX search_uri_rid ON search_uri (rid, param);

-- Settings of the database, such as the fingerprint of the search
-- parameter table the index rows were built with.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
