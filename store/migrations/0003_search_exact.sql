-- string:exact compares the value as written.
CREATE INDEX search_string_exact ON search_string (param, exact);
