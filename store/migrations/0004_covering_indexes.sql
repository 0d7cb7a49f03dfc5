-- The value indexes carry the rid, so that a search condition's set of
-- resources is read from the index alone.
DROP INDEX search_token_code;
CREATE INDEX search_token_code ON search_token (param, code, system, rid);
DROP INDEX search_token_system;
CREATE INDEX search_token_system ON search_token (param, system, rid);
DROP INDEX search_reference_target;
CREATE INDEX search_reference_target ON search_reference (param, target_id, target_type, rid);
DROP INDEX search_reference_rid;
CREATE INDEX search_reference_rid ON search_reference (rid, param, target_type, target_id);
DROP INDEX search_date_low;
CREATE INDEX search_date_low ON search_date (param, low, high, rid);
DROP INDEX search_quantity_code;
CREATE INDEX search_quantity_code ON search_quantity (param, code, value, rid);
