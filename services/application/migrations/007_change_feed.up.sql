-- The change feed of each school (ListChanges): one row per trail entry,
-- written by a statement trigger on trail in the writer's own transaction,
-- so every path that appends to a trail feeds it and nothing else must
-- remember to.
--
-- Position in the feed is (xid, seq): the writing transaction's ID and an
-- identity taken in that transaction. A reader reads only rows whose xid is
-- below the oldest transaction still in flight (pg_snapshot_xmin of its
-- statement's snapshot): every transaction below it has committed or rolled
-- back, so no row can still appear before the reader's cursor. A bare
-- identity would not do: a transaction holding seq 7 can commit after one
-- holding seq 8, and a reader that saw 8 would skip 7 forever. See
-- docs/architecture.md, "The change feed".
CREATE TABLE changes (
  school_code     text        NOT NULL,
  xid             xid8        NOT NULL DEFAULT pg_current_xact_id(),
  seq             bigint      GENERATED ALWAYS AS IDENTITY,
  application_id  uuid        NOT NULL,
  position        bigint      NOT NULL,
  type            text        NOT NULL,
  status          text        NOT NULL,
  -- '' for an application's first entry.
  previous_status text        NOT NULL,
  occurred_at     timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL,
  PRIMARY KEY (school_code, xid, seq)
);

CREATE FUNCTION changes_from_trail() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO changes (school_code, application_id, position, type, status, previous_status, occurred_at, recorded_at)
  SELECT a.school_code, n.application_id, n.position, n.type, n.status, coalesce(p.status, ''), n.occurred_at, n.recorded_at
  FROM new_rows n
  JOIN applications a ON a.id = n.application_id
  LEFT JOIN trail p ON p.application_id = n.application_id AND p.position = n.position - 1
  ORDER BY n.application_id, n.position;
  RETURN NULL;
END $$;
CREATE TRIGGER trail_feeds_changes AFTER INSERT ON trail
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION changes_from_trail();

-- The trails already there, in the order they were recorded, all at this
-- migration's xid. Creating the trigger locked trail against writes until
-- this migration commits, so no entry is fed twice or missed.
INSERT INTO changes (school_code, application_id, position, type, status, previous_status, occurred_at, recorded_at)
SELECT a.school_code, t.application_id, t.position, t.type, t.status, coalesce(p.status, ''), t.occurred_at, t.recorded_at
FROM trail t
JOIN applications a ON a.id = t.application_id
LEFT JOIN trail p ON p.application_id = t.application_id AND p.position = t.position - 1
ORDER BY t.recorded_at, t.application_id, t.position;

-- Insert-only like the trail it mirrors.
CREATE TRIGGER changes_no_update BEFORE UPDATE OR DELETE ON changes
  FOR EACH ROW EXECUTE FUNCTION trail_insert_only();
CREATE TRIGGER changes_no_truncate BEFORE TRUNCATE ON changes
  FOR EACH STATEMENT EXECUTE FUNCTION trail_insert_only();
