-- $infusion-outcomes reads every pain score and side effect of a cohort,
-- and every session of its courses, in patient (and order) order: covering
-- indexes let it read them without a lookup per row.
CREATE INDEX assessments_pain ON assessments (patient, effective, observation_id, idx, value, administration_id, status, kind)
    WHERE kind = 'pain';
CREATE INDEX assessments_side_effects ON assessments (patient, effective, observation_id, idx, system, code, display, value_bool,
    administration_id, status, kind) WHERE kind = 'side-effect';
CREATE INDEX infusion_administrations_sessions ON infusion_administrations (order_id, start, id, status, end, setting);
