-- $infusion-outcomes reads one summary row a course instead of every
-- session, pain score, side effect and opioid order of the cohort. The
-- writer keeps the summaries up to date: the triggers below name in
-- outcome_stale each course a write may change (rows inserted, updated or
-- deleted; old and new values), and at the end of each write the writer
-- summarizes those courses again and empties outcome_stale. What changes a
-- course's summary:
--   - its order, or one of its sessions;
--   - a pain score or side effect part of one of its sessions, or part of
--     no session, of its patient, and taken at most the session window after
--     its last session given (outcome_from): a later one is never part of
--     the summary (the outcome score is found when the summaries are read);
--   - any opioid order of its patient (the MME windows);
--   - a finding about its order or one of its sessions.
-- A migration that rebuilds one of these tables must create its triggers
-- again (TestOutcomeTriggers checks they are there).
CREATE TABLE outcome_stale (
    patient TEXT NOT NULL,
    order_id TEXT NOT NULL,
    PRIMARY KEY (patient, order_id)
) WITHOUT ROWID;

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

-- An order: its own course; an opioid order: every course of its patient.
CREATE TRIGGER infusion_orders_stale_insert AFTER INSERT ON infusion_orders WHEN NEW.patient IS NOT NULL
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT NEW.patient, NEW.id
    UNION ALL SELECT patient, order_id FROM course_outcomes WHERE NEW.drug_class = 'opioid' AND patient = NEW.patient; END;
CREATE TRIGGER infusion_orders_stale_delete AFTER DELETE ON infusion_orders WHEN OLD.patient IS NOT NULL
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT OLD.patient, OLD.id
    UNION ALL SELECT patient, order_id FROM course_outcomes WHERE OLD.drug_class = 'opioid' AND patient = OLD.patient; END;
CREATE TRIGGER infusion_orders_stale_update AFTER UPDATE ON infusion_orders
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT NEW.patient, NEW.id WHERE NEW.patient IS NOT NULL
    UNION ALL SELECT OLD.patient, OLD.id WHERE OLD.patient IS NOT NULL
    UNION ALL SELECT patient, order_id FROM course_outcomes
        WHERE (NEW.drug_class = 'opioid' AND patient = NEW.patient) OR (OLD.drug_class = 'opioid' AND patient = OLD.patient); END;

-- A session: its order's course, whoever its own subject is.
CREATE TRIGGER infusion_administrations_stale_insert AFTER INSERT ON infusion_administrations
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT patient, id FROM infusion_orders WHERE id = NEW.order_id AND patient IS NOT NULL; END;
CREATE TRIGGER infusion_administrations_stale_delete AFTER DELETE ON infusion_administrations
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT patient, id FROM infusion_orders WHERE id = OLD.order_id AND patient IS NOT NULL; END;
CREATE TRIGGER infusion_administrations_stale_update AFTER UPDATE ON infusion_administrations
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT patient, id FROM infusion_orders WHERE id IN (NEW.order_id, OLD.order_id) AND patient IS NOT NULL; END;

-- A pain score or side effect: the courses of its patient it can be part of.
CREATE TRIGGER assessments_stale_insert AFTER INSERT ON assessments
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT patient, order_id FROM course_outcomes
        WHERE NEW.kind IN ('pain', 'side-effect') AND NEW.administration_id IS NULL AND patient = NEW.patient
            AND (NEW.effective IS NULL OR NEW.effective <= outcome_from)
    UNION ALL SELECT o.patient, o.id FROM infusion_administrations a JOIN infusion_orders o ON o.id = a.order_id
        WHERE NEW.kind IN ('pain', 'side-effect') AND a.id = NEW.administration_id AND o.patient IS NOT NULL; END;
CREATE TRIGGER assessments_stale_delete AFTER DELETE ON assessments
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT patient, order_id FROM course_outcomes
        WHERE OLD.kind IN ('pain', 'side-effect') AND OLD.administration_id IS NULL AND patient = OLD.patient
            AND (OLD.effective IS NULL OR OLD.effective <= outcome_from)
    UNION ALL SELECT o.patient, o.id FROM infusion_administrations a JOIN infusion_orders o ON o.id = a.order_id
        WHERE OLD.kind IN ('pain', 'side-effect') AND a.id = OLD.administration_id AND o.patient IS NOT NULL; END;
CREATE TRIGGER assessments_stale_update AFTER UPDATE ON assessments
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT patient, order_id FROM course_outcomes
        WHERE NEW.kind IN ('pain', 'side-effect') AND NEW.administration_id IS NULL AND patient = NEW.patient
            AND (NEW.effective IS NULL OR NEW.effective <= outcome_from)
    UNION ALL SELECT o.patient, o.id FROM infusion_administrations a JOIN infusion_orders o ON o.id = a.order_id
        WHERE NEW.kind IN ('pain', 'side-effect') AND a.id = NEW.administration_id AND o.patient IS NOT NULL
    UNION ALL SELECT patient, order_id FROM course_outcomes
        WHERE OLD.kind IN ('pain', 'side-effect') AND OLD.administration_id IS NULL AND patient = OLD.patient
            AND (OLD.effective IS NULL OR OLD.effective <= outcome_from)
    UNION ALL SELECT o.patient, o.id FROM infusion_administrations a JOIN infusion_orders o ON o.id = a.order_id
        WHERE OLD.kind IN ('pain', 'side-effect') AND a.id = OLD.administration_id AND o.patient IS NOT NULL; END;

-- A finding: the course of the order or session it is about (its owner).
CREATE TRIGGER findings_stale_insert AFTER INSERT ON findings
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT patient, id FROM infusion_orders
        WHERE NEW.owner GLOB 'MedicationRequest/*' AND id = substr(NEW.owner, 19) AND patient IS NOT NULL
    UNION ALL SELECT o.patient, o.id FROM infusion_administrations a JOIN infusion_orders o ON o.id = a.order_id
        WHERE NEW.owner GLOB 'MedicationAdministration/*' AND a.id = substr(NEW.owner, 26) AND o.patient IS NOT NULL; END;
CREATE TRIGGER findings_stale_delete AFTER DELETE ON findings
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT patient, id FROM infusion_orders
        WHERE OLD.owner GLOB 'MedicationRequest/*' AND id = substr(OLD.owner, 19) AND patient IS NOT NULL
    UNION ALL SELECT o.patient, o.id FROM infusion_administrations a JOIN infusion_orders o ON o.id = a.order_id
        WHERE OLD.owner GLOB 'MedicationAdministration/*' AND a.id = substr(OLD.owner, 26) AND o.patient IS NOT NULL; END;
CREATE TRIGGER findings_stale_update AFTER UPDATE ON findings
BEGIN INSERT OR IGNORE INTO outcome_stale (patient, order_id)
    SELECT patient, id FROM infusion_orders
        WHERE NEW.owner GLOB 'MedicationRequest/*' AND id = substr(NEW.owner, 19) AND patient IS NOT NULL
    UNION ALL SELECT o.patient, o.id FROM infusion_administrations a JOIN infusion_orders o ON o.id = a.order_id
        WHERE NEW.owner GLOB 'MedicationAdministration/*' AND a.id = substr(NEW.owner, 26) AND o.patient IS NOT NULL
    UNION ALL SELECT patient, id FROM infusion_orders
        WHERE OLD.owner GLOB 'MedicationRequest/*' AND id = substr(OLD.owner, 19) AND patient IS NOT NULL
    UNION ALL SELECT o.patient, o.id FROM infusion_administrations a JOIN infusion_orders o ON o.id = a.order_id
        WHERE OLD.owner GLOB 'MedicationAdministration/*' AND a.id = substr(OLD.owner, 26) AND o.patient IS NOT NULL; END;
