-- Treatment courses read a session's pain scores, side effects and
-- monitoring by patient and time, whatever the code.
CREATE INDEX assessments_patient_effective ON assessments (patient, effective);

-- Every resource a finding implicates ("Type/id", as a JSON array), so that
-- a course lists the open findings about its order and administrations.
ALTER TABLE findings ADD COLUMN implicated TEXT;
UPDATE findings SET implicated = (
    SELECT NULLIF(json_group_array(CASE WHEN instr(j.value ->> 'reference', '/_history/') > 0
        THEN substr(j.value ->> 'reference', 1, instr(j.value ->> 'reference', '/_history/') - 1)
        ELSE j.value ->> 'reference' END), '[]')
    FROM resources r
    JOIN resource_versions v ON v.seq = r.seq,
    json_each(CAST(v.body AS TEXT), '$.implicated') j
    WHERE r.type = 'DetectedIssue' AND r.id = findings.id AND j.value ->> 'reference' IS NOT NULL);
