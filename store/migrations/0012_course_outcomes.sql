-- $infusion-outcomes reads one summary row a course instead of every
-- session, pain score, side effect and opioid order of the cohort. The
-- writer keeps the summaries up to date: these triggers name each patient
-- whose courses, sessions, pain scores, side effects or opioid orders a
-- write touches (inserted, updated or deleted rows, old and new patient),
-- and at the end of each write the writer summarizes that patient's
-- courses again (and empties outcome_stale). Findings need no trigger: the
-- server writes them with the order or session they are about, in the same
-- write. A migration that rebuilds one of these tables must create its
-- triggers again (TestOutcomeTriggers checks they are there).
CREATE TABLE outcome_stale (patient TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE TABLE course_outcomes (
    patient TEXT NOT NULL,
    order_id TEXT NOT NULL,
    drug_class TEXT NOT NULL,
    condition_system TEXT,
    condition_code TEXT,
    condition_display TEXT,
    setting TEXT,
    start TEXT,
    first_given TEXT,
    last_given TEXT,
    outcome_from TEXT,          -- last_given plus the session window
    given INTEGER NOT NULL,
    stopped INTEGER NOT NULL,
    not_done INTEGER NOT NULL,
    stopped_for_side_effect INTEGER NOT NULL,
    with_side_effect INTEGER NOT NULL,
    side_effects TEXT,          -- JSON: [{"system","code","display","count"}]
    findings TEXT,              -- the same
    baseline REAL,
    sessions BLOB,              -- per session given, 16 bytes: start (unix ms) and score (NaN: none), little-endian
    mme_before REAL,
    mme_after REAL,
    PRIMARY KEY (patient, order_id)
) WITHOUT ROWID;

CREATE TRIGGER infusion_orders_stale_insert AFTER INSERT ON infusion_orders WHEN NEW.patient IS NOT NULL
BEGIN INSERT OR IGNORE INTO outcome_stale (patient) VALUES (NEW.patient); END;
CREATE TRIGGER infusion_orders_stale_delete AFTER DELETE ON infusion_orders WHEN OLD.patient IS NOT NULL
BEGIN INSERT OR IGNORE INTO outcome_stale (patient) VALUES (OLD.patient); END;
CREATE TRIGGER infusion_orders_stale_update AFTER UPDATE ON infusion_orders
BEGIN INSERT OR IGNORE INTO outcome_stale (patient)
    SELECT NEW.patient WHERE NEW.patient IS NOT NULL UNION SELECT OLD.patient WHERE OLD.patient IS NOT NULL; END;

-- A session belongs to its order's course, whoever its own subject is.
CREATE TRIGGER infusion_administrations_stale_insert AFTER INSERT ON infusion_administrations
BEGIN INSERT OR IGNORE INTO outcome_stale (patient)
    SELECT NEW.patient WHERE NEW.patient IS NOT NULL
    UNION SELECT patient FROM infusion_orders WHERE id = NEW.order_id AND patient IS NOT NULL; END;
CREATE TRIGGER infusion_administrations_stale_delete AFTER DELETE ON infusion_administrations
BEGIN INSERT OR IGNORE INTO outcome_stale (patient)
    SELECT OLD.patient WHERE OLD.patient IS NOT NULL
    UNION SELECT patient FROM infusion_orders WHERE id = OLD.order_id AND patient IS NOT NULL; END;
CREATE TRIGGER infusion_administrations_stale_update AFTER UPDATE ON infusion_administrations
BEGIN INSERT OR IGNORE INTO outcome_stale (patient)
    SELECT NEW.patient WHERE NEW.patient IS NOT NULL UNION SELECT OLD.patient WHERE OLD.patient IS NOT NULL
    UNION SELECT patient FROM infusion_orders WHERE id IN (NEW.order_id, OLD.order_id) AND patient IS NOT NULL; END;

CREATE TRIGGER assessments_stale_insert AFTER INSERT ON assessments
    WHEN NEW.kind IN ('pain', 'side-effect') AND NEW.patient IS NOT NULL
BEGIN INSERT OR IGNORE INTO outcome_stale (patient) VALUES (NEW.patient); END;
CREATE TRIGGER assessments_stale_delete AFTER DELETE ON assessments
    WHEN OLD.kind IN ('pain', 'side-effect') AND OLD.patient IS NOT NULL
BEGIN INSERT OR IGNORE INTO outcome_stale (patient) VALUES (OLD.patient); END;
CREATE TRIGGER assessments_stale_update AFTER UPDATE ON assessments
    WHEN NEW.kind IN ('pain', 'side-effect') OR OLD.kind IN ('pain', 'side-effect')
BEGIN INSERT OR IGNORE INTO outcome_stale (patient)
    SELECT NEW.patient WHERE NEW.patient IS NOT NULL UNION SELECT OLD.patient WHERE OLD.patient IS NOT NULL; END;
