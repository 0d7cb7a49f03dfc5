-- Fewer index entries per write: the url, identifier and text indexes hold
-- only the rows that have a value (most references are relative, most
-- tokens have no text), and references to a target are found through the
-- (param, target) index, so the (target) one goes.
DROP INDEX search_reference_url;
CREATE INDEX search_reference_url ON search_reference (param, url) WHERE url <> '';
DROP INDEX search_reference_ident;
CREATE INDEX search_reference_ident ON search_reference (param, ident_value) WHERE ident_value <> '';
DROP INDEX search_reference_to;
DROP INDEX search_token_text;
CREATE INDEX search_token_text ON search_token (param, text) WHERE text <> '';
