-- A FINAL report version is history: rows are added, never changed. The
-- service's role may only read and insert them (AppendOnly in
-- migrations.go); these triggers refuse the rest to anyone else too.
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%.% is insert-only (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END;
$$;
CREATE TRIGGER report_versions_no_update BEFORE UPDATE OR DELETE ON report_versions
  FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER report_versions_no_truncate BEFORE TRUNCATE ON report_versions
  FOR EACH STATEMENT EXECUTE FUNCTION append_only();
