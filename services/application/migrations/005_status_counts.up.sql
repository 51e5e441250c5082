-- Applications per status, for aid_applications_by_status, without counting
-- every row. Statement triggers on applications write each statement's net
-- change per status to status_count_deltas in the writer's own transaction
-- (insert-only: concurrent writers never wait on a shared counter row); the
-- gauge worker folds the deltas into status_counts and reads its few rows.
-- The functions keep this schema as their search path (SET ... FROM
-- CURRENT), whatever the writer's.
CREATE TABLE status_counts (
  status text   PRIMARY KEY,
  n      bigint NOT NULL
);
CREATE TABLE status_count_deltas (
  status text   NOT NULL,
  n      bigint NOT NULL
);

CREATE FUNCTION status_counts_inserted() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO status_count_deltas (status, n) SELECT status, count(*) FROM new_rows GROUP BY status;
  RETURN NULL;
END $$;
CREATE FUNCTION status_counts_updated() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO status_count_deltas (status, n)
  SELECT status, sum(d) FROM (
    SELECT status, -1 AS d FROM old_rows UNION ALL SELECT status, 1 FROM new_rows
  ) c GROUP BY status HAVING sum(d) <> 0;
  RETURN NULL;
END $$;
CREATE FUNCTION status_counts_deleted() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO status_count_deltas (status, n) SELECT status, -count(*) FROM old_rows GROUP BY status;
  RETURN NULL;
END $$;
CREATE TRIGGER applications_count_inserted AFTER INSERT ON applications
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION status_counts_inserted();
CREATE TRIGGER applications_count_updated AFTER UPDATE ON applications
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION status_counts_updated();
CREATE TRIGGER applications_count_deleted AFTER DELETE ON applications
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION status_counts_deleted();

-- The rows already there, counted once. Creating the triggers locked
-- applications against writes until this migration commits, so no change
-- is counted twice or missed.
INSERT INTO status_counts (status, n) SELECT status, count(*) FROM applications GROUP BY status;
