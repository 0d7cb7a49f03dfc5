-- Every version of every resource, in the order written. seq is the global
-- order of writes: history pages by it, newest first.
CREATE TABLE resource_versions (
    seq          INTEGER PRIMARY KEY,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated TEXT    NOT NULL, -- FHIR instant, UTC, milliseconds
    method       TEXT    NOT NULL, -- POST, PUT or DELETE
    body         BLOB,             -- the resource as stored; NULL for a delete
    UNIQUE (type, id, version)
);
CREATE INDEX resource_versions_type_seq ON resource_versions (type, seq);
CREATE INDEX resource_versions_last_updated ON resource_versions (last_updated);

-- The current version of each resource.
CREATE TABLE resources (
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    seq          INTEGER NOT NULL REFERENCES resource_versions (seq),
    deleted      INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,
    PRIMARY KEY (type, id)
) WITHOUT ROWID;

-- The infusion model: rows of the current version of each resource.
CREATE TABLE infusion_orders (
    id                       TEXT PRIMARY KEY,
    version                  INTEGER NOT NULL,
    patient                  TEXT,
    status                   TEXT,
    intent                   TEXT,
    priority                 TEXT,
    authored_on              TEXT,
    drug_system              TEXT,
    drug_code                TEXT,
    drug_display             TEXT,
    drug_class               TEXT NOT NULL,
    form_code                TEXT,
    strength_value           REAL,
    strength_unit            TEXT,
    strength_per_value       REAL,
    strength_per_unit        TEXT,
    route_system             TEXT,
    route_code               TEXT,
    route_display            TEXT,
    setting                  TEXT,
    dose_value               REAL,
    dose_unit                TEXT,
    dose_low                 REAL,
    dose_high                REAL,
    dose_range_unit          TEXT,
    rate_value               REAL,
    rate_unit                TEXT,
    rate_low                 REAL,
    rate_high                REAL,
    rate_range_unit          TEXT,
    weight_based             INTEGER NOT NULL,
    as_needed                INTEGER NOT NULL,
    duration_minutes         REAL,
    frequency                INTEGER,
    period                   REAL,
    period_unit              TEXT,
    interval_hours           REAL,
    sessions                 INTEGER,
    bounds_start             TEXT,
    bounds_end               TEXT,
    max_dose_per_admin_value REAL,
    max_dose_per_admin_unit  TEXT,
    max_dose_lifetime_value  REAL,
    max_dose_lifetime_unit   TEXT,
    validity_start           TEXT,
    validity_end             TEXT,
    supply_days              REAL,
    dispense_quantity_value  REAL,
    dispense_quantity_unit   TEXT
);
CREATE INDEX infusion_orders_patient ON infusion_orders (patient, drug_class, authored_on);
CREATE INDEX infusion_orders_class ON infusion_orders (drug_class, status);

CREATE TABLE order_indications (
    order_id  TEXT NOT NULL,
    system    TEXT,
    code      TEXT,
    display   TEXT,
    reference TEXT -- a reasonReference ("Condition/id") instead of a code
);
CREATE INDEX order_indications_order ON order_indications (order_id);
CREATE INDEX order_indications_code ON order_indications (code, system);

CREATE TABLE order_ingredients (
    order_id       TEXT    NOT NULL,
    position       INTEGER NOT NULL,
    system         TEXT,
    code           TEXT,
    display        TEXT,
    strength_value REAL,
    strength_unit  TEXT,
    per_value      REAL,
    per_unit       TEXT,
    PRIMARY KEY (order_id, position)
) WITHOUT ROWID;

CREATE TABLE infusion_administrations (
    id           TEXT PRIMARY KEY,
    version      INTEGER NOT NULL,
    order_id     TEXT,
    patient      TEXT,
    status       TEXT,
    start        TEXT,
    end          TEXT,
    drug_system  TEXT,
    drug_code    TEXT,
    drug_display TEXT,
    drug_class   TEXT NOT NULL,
    route_system TEXT,
    route_code   TEXT,
    setting      TEXT,
    dose_value   REAL,
    dose_unit    TEXT,
    rate_value   REAL,
    rate_unit    TEXT
);
CREATE INDEX infusion_administrations_order ON infusion_administrations (order_id, start);
CREATE INDEX infusion_administrations_patient ON infusion_administrations (patient, start);

CREATE TABLE administration_reasons (
    administration_id TEXT NOT NULL,
    system            TEXT,
    code              TEXT,
    display           TEXT
);
CREATE INDEX administration_reasons_administration ON administration_reasons (administration_id);

CREATE TABLE assessments (
    observation_id    TEXT    NOT NULL,
    idx               INTEGER NOT NULL, -- 0: the observation's value; i+1: component i
    version           INTEGER NOT NULL,
    patient           TEXT,
    status            TEXT,
    kind              TEXT    NOT NULL,
    category          TEXT,
    system            TEXT,
    code              TEXT,
    display           TEXT,
    value             REAL,
    unit              TEXT,
    value_system      TEXT,
    value_code        TEXT,
    value_display     TEXT,
    value_bool        INTEGER,
    value_text        TEXT,
    effective         TEXT,
    effective_end     TEXT,
    administration_id TEXT,
    PRIMARY KEY (observation_id, idx)
) WITHOUT ROWID;
CREATE INDEX assessments_patient ON assessments (patient, kind, effective);
CREATE INDEX assessments_patient_code ON assessments (patient, code, effective);
CREATE INDEX assessments_administration ON assessments (administration_id);
